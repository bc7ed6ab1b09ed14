SELECT md_price('AAPL', 'yahoo_finance', '1 hour');
