# JWT claims beyond the signature: exp numeric and within
# MD_API_JWT_MAX_LIFETIME, nbf and iat not in the future, iss and aud when
# configured, the algorithm really checked (an HS512 token with a valid
# signature, RS256 confusion); a token without sub is its own caller.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::API;
use MarketData::JWT;
use MarketData::Redis;

my $node = MarketData::API::node_with_extension('jwt');
my $redis = MarketData::Redis->new;
$node->safe_psql('md', "SELECT md_ingest_price('AAPL', 'yahoo_finance', 100, now())");
my $secret = 'a-test-secret-of-at-least-32-bytes-long';
my $api = MarketData::API->new(node => $node, redis => $redis,
	env => { MD_API_JWT_SECRET => $secret, MD_API_JWT_ISSUER => 'https://issuer.test',
		MD_API_JWT_AUDIENCE => 'marketdata', MD_API_JWT_MAX_LIFETIME => 3600,
		MD_API_RATE_LIMIT_READER => 3, MD_API_RATE_WINDOW => 3600 });
my $now = time();
my %good = (sub => 'r', role => 'reader', iss => 'https://issuer.test', aud => 'marketdata',
	exp => $now + 300);

sub get
{
	my ($claims, %o) = @_;
	my $token = MarketData::JWT::token($secret, { %good, %$claims }, %o);
	$token = $o{raw} if defined $o{raw};
	return $api->get('/prices/latest?symbol=AAPL', bearer => $token);
}

is(get({})->{status}, 200, 'a good token');
is(get({ aud => [ 'other', 'marketdata' ] })->{status}, 200, 'aud as an array holding ours');
is(get({ nbf => $now - 10, iat => $now - 10 })->{status}, 200, 'nbf and iat in the past');
my @bad = (
	[ 'HS512 with a valid signature', {}, alg => 'HS512' ],
	[ 'RS256 header, HMAC signature (algorithm confusion)', {}, alg => 'RS256' ],
	[ 'exp as a string', { exp => '' . ($now + 300) } ],
	[ 'exp beyond the maximum lifetime', { exp => $now + 7200 } ],
	[ 'nbf in the future', { nbf => $now + 600 } ],
	[ 'iat in the future', { iat => $now + 600 } ],
	[ 'nbf as a string', { nbf => 'yesterday' } ],
	[ 'another issuer', { iss => 'https://evil.test' } ],
	[ 'no issuer', { iss => undef } ],
	[ 'another audience', { aud => 'other' } ],
	[ 'no audience', { aud => undef } ],
);
for my $case (@bad)
{
	my ($name, $claims, %o) = @$case;
	my %c = (%good, %$claims);
	delete $c{$_} for grep { !defined $c{$_} } keys %c;
	my $token = MarketData::JWT::token($secret, \%c, %o);
	MarketData::API::error_ok($api->get('/prices/latest?symbol=AAPL', bearer => $token),
		401, 'unauthorized', "401: $name");
}

# without sub: each token its own rate-limit bucket, not one shared by all
my %nosub = %good;
delete $nosub{sub};
my @tokens = map { MarketData::JWT::token($secret, { %nosub, jti => "t$_" }) } 1 .. 2;
my @s1 = map { $api->get('/prices/latest?symbol=AAPL', bearer => $tokens[0])->{status} } 1 .. 4;
is("@s1", '200 200 200 429', 'a token without sub: its own limit of 3');
is($api->get('/prices/latest?symbol=AAPL', bearer => $tokens[1])->{status}, 200,
	'another token without sub is another caller');
done_testing();
