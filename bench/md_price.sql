SELECT md_price('AAPL', max_age => '1 hour');
