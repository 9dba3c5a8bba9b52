"""Port of ccxt's examples/py/async-bitstamp-create-order-cancel-order.py
(see README.md): place a limit sell, print it, cancel it."""

from pprint import pprint

import clients.ccxt.async_support as ccxt  # was: import ccxt.async_support as ccxt

print('CCXT Version:', ccxt.__version__)


async def main(config, symbol):  # was: main(), symbol 'BTC/USDT', credentials inline
    exchange = ccxt.exchangesim(config)  # was: ccxt.bitstamp({'apiKey': ..., 'secret': ..., 'uid': ...})
    markets = await exchange.load_markets()
    exchange.verbose = True
    print('-------------------------------------------------------------------')
    try:
        balance = await exchange.fetch_balance()
        pprint(balance)
    except Exception as e:
        print('Failed to fetch the balance')
        print(type(e).__name__, str(e))
    order = None
    print('-------------------------------------------------------------------')
    try:
        market = exchange.market(symbol)
        base = market['base']
        quote = market['quote']
        pprint(balance[base])
        pprint(balance[quote])
        amount = 0.001
        price = 70000  # was: 40000 (a sell must rest above this venue's market)
        order_type = 'limit'
        side = 'sell'
        order = await exchange.create_order(symbol, order_type, side, amount, price)
        pprint(order)
    except Exception as e:
        print('Failed to place', symbol, 'order')
        print(type(e).__name__, str(e))
    print('-------------------------------------------------------------------')
    if order is not None:
        try:
            response = await exchange.cancel_order(order['id'], order['symbol'])
            pprint(response)
        except Exception as e:
            print('Failed to cancel', symbol, 'order')
            print(type(e).__name__, str(e))
    print('-------------------------------------------------------------------')
    await exchange.close()
    return order
