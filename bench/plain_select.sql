SELECT price FROM md.latest_prices WHERE symbol = 'AAPL' AND provider = 'yahoo_finance';
