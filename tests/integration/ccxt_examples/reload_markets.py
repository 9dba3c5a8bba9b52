"""Port of ccxt's examples/ccxt.pro/py/binance-reload-markets.py (see
README.md): watch a book while another loop reloads the markets."""

from asyncio import gather

import clients.ccxt.pro as ccxtpro  # was: import ccxt.pro

print('CCXT Pro version', ccxtpro.__version__)


async def watch_order_book(exchange, symbol, rounds, log):  # was: no rounds, no log
    for _ in range(rounds):  # was: while True
        try:
            orderbook = await exchange.watch_order_book(symbol)
            datetime = exchange.iso8601(exchange.milliseconds())
            print(datetime, orderbook['nonce'], symbol, orderbook['asks'][0], orderbook['bids'][0])
            log.append(('book', orderbook['nonce']))
        except Exception as e:
            print(type(e).__name__, str(e))
            log.append(('error', type(e).__name__))
            break


async def reload_markets(exchange, delay, rounds, log):
    for _ in range(rounds):  # was: while True
        try:
            await exchange.sleep(delay)
            markets = await exchange.load_markets(True)
            datetime = exchange.iso8601(exchange.milliseconds())
            print(datetime, 'Markets reloaded')
            log.append(('reloaded', len(markets)))
        except Exception as e:
            print(type(e).__name__, str(e))
            log.append(('error', type(e).__name__))
            break


async def main(config, symbol, delay, rounds):  # was: main(); symbol 'BTC/USDT', delay 60000
    exchange = ccxtpro.exchangesim(config)  # was: ccxt.pro.binance()
    await exchange.load_markets()
    log = []
    loops = [watch_order_book(exchange, symbol, rounds, log), reload_markets(exchange, delay, rounds, log)]
    await gather(*loops)
    await exchange.close()
    return log
