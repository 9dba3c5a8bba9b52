"""docs/protocol.md is generated from the messages; it must match them."""

from pathlib import Path

from protocol.messages import REJECT_HELP, RejectReason
from protocol.schema import markdown_reference

PAGE = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def test_protocol_page_is_up_to_date():
    assert PAGE.read_text(encoding="utf-8") == markdown_reference(), (
        "docs/protocol.md is stale: regenerate it with "
        "python -c 'from protocol.schema import markdown_reference as m; open(\"docs/protocol.md\",\"w\").write(m())'"
    )


def test_every_reject_reason_is_explained():
    assert set(REJECT_HELP) == set(RejectReason)
    assert all(REJECT_HELP[r] for r in RejectReason)
