"""The CSV price feed (``serve --feed-csv``): every refusal names the file,
the line, the column and the bad value in words."""

from __future__ import annotations

import pytest

from exchange_sim.feed import CsvFeed, usd_to_e8

ASSETS = {"BTC", "ETH", "USDT"}


def feed(tmp_path, text, name="prices.csv", **kw):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return CsvFeed(path, known_assets=ASSETS, **kw), path


def test_rows_in_time_order_with_header_comments_and_blank_lines(tmp_path):
    f, _ = feed(tmp_path, "time,asset,price\n# a comment\n0,BTC,61000\n\n0,ETH,3000.5\n2.5,BTC,60999.99\n")
    assert f.rows == [(0.0, "BTC", 61_000 * 10**8), (0.0, "ETH", 300_050_000_000), (2.5, "BTC", 6_099_999_000_000)]
    f.start(10.0)
    assert [(c.asset, c.price) for c in f.poll(10.0)] == [("BTC", 61_000 * 10**8), ("ETH", 300_050_000_000)]
    assert f.poll(12.4) == [] and [c.asset for c in f.poll(12.5)] == ["BTC"] and f.next_due() is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("time,asset,price\n0,BTC,60000\n1,BTC,60100\n2,BTC,60200\n3,BTC,abc\n", "price 'abc' is not a number"),
        ("0,BTC,60000\n0,ETH,3000\n\n1,ETH,-5\n", "price '-5' is not a positive number"),  # blank lines count
        ("0,BTC,1e20\n", "price '1e20' is out of range: 0.00000001 to 10,000,000 USD"),
        ("0,BTC,NaN\n", "price 'NaN' is not a positive number"),
        ("soon,BTC,60000\n", "time 'soon' is not a number (seconds from the start)"),
        ("-1,BTC,60000\n", "time '-1' is not a number of seconds >= 0"),
        ("0,DOGE,0.1\n", "unknown asset 'DOGE'; valid: BTC, ETH, USDT"),
        ("5,BTC,60000\n4,BTC,60000\n", "time '4' is before 5 on line 1: rows must be in time order"),
        ("1,BTC,60000\n1,ETH,3000\n1,BTC,60001\n", "BTC already has a price at time 1 (line 1)"),
        ("0,BTC\n", "expected 3 columns time,asset,price, got 2: '0,BTC'"),
        ("0,BTC,60000,extra\n", "expected 3 columns time,asset,price, got 4: '0,BTC,60000,extra'"),
    ],
)
def test_a_bad_row_is_refused_naming_file_line_column_and_value(tmp_path, text, message):
    lines = text.rstrip("\n").split("\n")
    bad_line = len(lines)  # every case's bad row is its last line
    with pytest.raises(ValueError) as exc:
        feed(tmp_path, text)
    assert str(exc.value) == f"{tmp_path / 'prices.csv'}:{bad_line}: {message}"


def test_a_file_without_rows_is_refused(tmp_path):
    with pytest.raises(ValueError) as exc:
        feed(tmp_path, "time,asset,price\n# nothing yet\n")
    assert str(exc.value) == f"{tmp_path / 'prices.csv'}: no price rows (lines time,asset,price)"


def test_a_binary_file_is_refused_readably(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_bytes(b"0,BTC,60000\n\xff\xfe\n")
    with pytest.raises(ValueError) as exc:
        CsvFeed(path)
    assert str(exc.value).startswith(f"{path}: not UTF-8 text")


def test_usd_to_e8_words():
    assert usd_to_e8("60000.123456785") == 6_000_012_345_678  # half-even at 1e-8
    with pytest.raises(ValueError, match=r"^price 'abc' is not a number$"):
        usd_to_e8("abc")


def test_serve_with_a_bad_csv_exits_2_naming_the_line(tmp_path, capsys):
    """The message reaches the command line as is (no traceback, nothing bound)."""
    from exchange_sim.cli import main

    path = tmp_path / "prices.csv"
    path.write_text("time,asset,price\n0,BTC,60000\n1,BTC,abc\n")
    rc = main(["serve", "--feed-csv", str(path), "--orders", "tcp://127.0.0.1:*", "--market-data",
               "tcp://127.0.0.1:*", "--duration", "1"])
    out, err = capsys.readouterr()
    assert rc == 2 and err.endswith(f"exchange-sim: {path}:3: price 'abc' is not a number\n")
