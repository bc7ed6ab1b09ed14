# Operator controls: md_provider_reset turns a rate-limited provider usable
# at once; md_worker_restart stops a kind of worker for the launcher to
# start again; both for admins only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::TestDb;
use MarketData::FakeProvider;

my $fake = MarketData::FakeProvider->new;
my $node = MarketData::TestDb->node('controls', conf => qq{
marketdata.databases = 'md'
marketdata.allow_private_provider_urls = on
});
$fake->point_providers($node, 'md');

# a 429 with Retry-After: 7 makes yahoo_finance rate limited for 7 s
is($node->safe_psql('md', "SELECT error_class FROM md_fetch('RETRY1', 'yahoo_finance')"), 'rate_limited',
	'the provider answers 429');
is($node->safe_psql('md', "SELECT error_class FROM md_fetch('SYNA', 'yahoo_finance')"), 'rate_limited',
	'and is not asked again while its Retry-After runs');
is($node->safe_psql('md', "SELECT md_provider_reset('yahoo_finance')"), 't', 'md_provider_reset');
is($node->safe_psql('md', "SELECT coalesce(error_class, 'ok') || ' ' || (price > 0) FROM md_fetch('SYNA', 'yahoo_finance')"),
	'ok true', 'makes it usable at once');
is($node->safe_psql('md', "SELECT rate_limited_until IS NULL FROM md.provider_status WHERE provider = 'yahoo_finance'"),
	't', 'md.provider_status shows no rate limit');
my ($rc, $out, $err) = $node->psql('md', "SELECT md_provider_reset('nosuch')");
like($err, qr/unknown provider "nosuch"/, 'an unknown provider is an error');

# md_worker_restart
ok($node->poll_query_until('md', "SELECT count(*) = 1 FROM md.worker_status WHERE worker = 'relay' AND database = 'md'"),
	'the relay runs');
my $pid = $node->safe_psql('md', "SELECT pid FROM md.worker_status WHERE worker = 'relay' AND database = 'md'");
is($node->safe_psql('md', "SELECT md_worker_restart('relay')"), '1', 'md_worker_restart stops the relay');
ok($node->poll_query_until('md',
		"SELECT count(*) = 1 FROM md.worker_status WHERE worker = 'relay' AND database = 'md' AND pid <> $pid"),
	'and the launcher starts a new one');
($rc, $out, $err) = $node->psql('md', "SELECT md_worker_restart('nosuch')");
like($err, qr/unknown worker kind "nosuch"/, 'an unknown kind is an error');

# admins only
$node->safe_psql('md', 'CREATE ROLE somebody LOGIN');
for my $call ("md_provider_reset('yahoo_finance')", "md_worker_restart('relay')")
{
	($rc, $out, $err) = $node->psql('md', "SELECT $call", extra_params => [ '-U', 'somebody' ]);
	like($err, qr/permission denied for function/, "$call is for admins");
}

done_testing();
