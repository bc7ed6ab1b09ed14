# md.polling_jobs without bloat: every claim and finish of a run updates the
# job's row; with no index on the columns they change and room left on each
# page (fillfactor), those are HOT updates: no new index entries, and the
# page's old versions are pruned in place, so the table does not grow.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MarketData::TestDb;
use MarketData::FakeProvider;

my $fake = MarketData::FakeProvider->new;
my $node = MarketData::TestDb->node('hot', conf => qq{
marketdata.databases = 'md'
marketdata.allow_private_provider_urls = on
});
$fake->point_providers($node, 'md');

# 100 jobs of one symbol every second
$node->safe_psql('md', q{
	INSERT INTO md.polling_jobs (symbols, interval, provider)
	SELECT ARRAY['SYNH' || g], 1, 'yahoo_finance' FROM generate_series(1, 100) g;
});
sub updates_at_least
{
	my ($n) = @_;
	return $node->poll_query_until('md',
		"SELECT n_tup_upd >= $n FROM pg_stat_user_tables WHERE relid = 'md.polling_jobs'::regclass");
}
sub pages { return $node->safe_psql('md', "SELECT pg_relation_size('md.polling_jobs') / 8192"); }

ok(updates_at_least(2000), 'the scheduler claimed and finished 1,000 runs');
my ($upd, $hot) = split /\|/, $node->safe_psql('md',
	"SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'md.polling_jobs'::regclass");
my $ratio = $hot / $upd;
ok($ratio > 0.9, sprintf('%.1f%% of %d updates of md.polling_jobs are HOT', 100 * $ratio, $upd));
# settled: pages reused in place from then on
my $pages = pages();
ok(updates_at_least(5000), 'and 1,500 more runs');
my $after = pages();
ok($after <= $pages + 1, "the table stays at $after pages (from $pages after the first 1,000 runs)");
is($node->safe_psql('md', "SELECT count(*) FROM pg_index WHERE indrelid = 'md.polling_jobs'::regclass"),
	'1', 'its one index is the primary key');

done_testing();
