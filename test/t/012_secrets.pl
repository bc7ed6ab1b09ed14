# API keys: from the environment or the secrets file (refused when group or
# others may read it), sent to the provider, and never kept: not in stored
# URLs, bodies, messages or the server log.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::FakeProvider;
use MarketData::TestDb;

my $key = 'sEcReT-012-key';
# the tests' own SQL is logged: they name the key only in hex
my $key_sql = "convert_from(decode('" . unpack('H*', $key) . "', 'hex'), 'UTF8')";
my $fake = MarketData::FakeProvider->new(key => $key);
my $node = MarketData::TestDb->node('secrets',
	env => { MARKETDATA_ALPHA_VANTAGE_KEY => $key, MARKETDATA_FINNHUB_KEY => $key });
$fake->point_providers($node, 'md');

# the environment's key reaches the provider (the fake refuses others)
is($node->safe_psql('md', "SELECT price FROM md_fetch('MSFT', 'alpha_vantage')"), '112.1300',
	'alpha_vantage key from the environment (query parameter)');
is($node->safe_psql('md', "SELECT price FROM md_fetch('SPY', 'finnhub')"), '376.66',
	'finnhub key from the environment (header)');

# a provider echoing the key: masked everywhere we keep something
$node->safe_psql('md', "SELECT * FROM md_fetch('ECHOKEY', 'alpha_vantage')");
$node->safe_psql('md', "SELECT * FROM md_fetch('ECHOKEY', 'finnhub')");
my ($ret, $out, $err) = $node->psql('md', "SELECT md_price('ECHOKEY', 'alpha_vantage')");
like($err, qr/refused our API key: the apikey \*\*\* is not valid/, 'error message masked');
unlike($err, qr/\Q$key\E/, 'error message without the key');
is($node->safe_psql('md', "SELECT url FROM md.raw_responses WHERE provider = 'alpha_vantage' AND symbol = 'MSFT'"),
	$fake->url . '/query?function=GLOBAL_QUOTE&symbol=MSFT&apikey=***', 'stored URL masked');
is($node->safe_psql('md', "SELECT count(*) FROM md.raw_responses WHERE body LIKE '%***%' AND symbol = 'ECHOKEY'"),
	'2', 'echoed key masked in stored bodies');
is($node->safe_psql('md', qq{SELECT count(*) FROM md.raw_responses
	WHERE strpos(url, $key_sql) > 0 OR strpos(body, $key_sql) > 0}), '0', 'no stored URL or body holds the key');
is($node->safe_psql('md', qq{SELECT count(*) FROM md_fetch('ECHOKEY', 'finnhub') WHERE strpos(message, $key_sql) > 0}),
	'0', 'md_fetch messages without the key');
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$key\E/, 'the server log never shows the key');
like($log, qr/fetch of "ECHOKEY" at alpha_vantage failed: auth_failed/, 'failures are logged');

# the secrets file: refused when group or others may read it
my $file = $node->basedir . '/secrets.conf';
open(my $fh, '>', $file) or die;
print $fh "# provider = key\npolygon = $key\n  finnhub=wrong-key  \n";
close $fh;
chmod 0644, $file;
$node->append_conf('postgresql.conf', "marketdata.secrets_file = '$file'");
$node->reload;
($ret, $out, $err) = $node->psql('md', "SELECT * FROM md_fetch('AAPL', 'polygon')");
like($err, qr/secrets file ".*secrets.conf" is accessible by group or others/, 'a readable secrets file is refused');
chmod 0600, $file;
is($node->safe_psql('md', "SELECT price FROM md_fetch('AAPL', 'polygon')"), '156.8',
	'polygon key from the secrets file');
is($node->safe_psql('md', "SELECT price FROM md_fetch('SPY', 'finnhub')"), '376.66',
	'the environment wins over the file');
unlike(slurp_file($node->logfile), qr/\Q$key\E/, 'still no key in the log');

# a wrong key: auth_failed from the provider, MD103
open($fh, '>', $file) or die;
print $fh "polygon = not-the-key\n";
close $fh;
($ret, $out, $err) = $node->psql('md', "\\set VERBOSITY verbose\nSELECT md_price('AAPL', 'polygon', '0')");
like($err, qr/ERROR:  MD103: provider polygon refused our API key: Unknown API Key/, 'wrong key: MD103');
unlike($err, qr/not-the-key/, 'the wrong key is not shown either');

# a missing secrets file is an error naming the setting
unlink $file;
($ret, $out, $err) = $node->psql('md', "SELECT * FROM md_fetch('AAPL', 'polygon')");
like($err, qr/could not open secrets file/, 'missing secrets file');

$node->stop;
$fake->stop;
done_testing();
