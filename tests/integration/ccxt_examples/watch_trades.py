"""Port of ccxt's examples/ccxt.pro/py/coinbase-watch-trades.py (see
README.md): print each trade as it streams in."""

import clients.ccxt.pro as ccxtpro  # was: import ccxt.pro as ccxtpro


async def main(config, symbol, rounds):  # was: main(); symbol 'BTC/USD'
    exchange = ccxtpro.exchangesim(config)  # was: ccxtpro.coinbase()
    method = 'watchTrades'
    print('CCXT Pro version', ccxtpro.__version__)
    seen = []
    if exchange.has[method]:
        for _ in range(rounds):  # was: while True
            try:
                trades = await exchange.watch_trades(symbol)
                num_trades = len(trades)
                trade = trades[-1]
                seen.extend(trades)
                print(exchange.iso8601(exchange.milliseconds()), trade['symbol'], trade['datetime'], trade['price'],
                      trade['amount'], 'stored', num_trades, 'trades in cache')
            except Exception as e:
                # stop
                await exchange.close()
                raise e
    else:
        raise Exception(exchange.id + ' ' + method + ' is not supported or not implemented yet')
    await exchange.close()  # was: not reached (the loop never ends)
    return seen
