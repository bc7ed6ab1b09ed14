# MarketData::JWT: HS256 tokens for tests (and deliberately broken ones).
package MarketData::JWT;

use strict;
use warnings;
use Digest::SHA qw(hmac_sha256);
use JSON::PP;
use MIME::Base64 qw(encode_base64url);

# token($secret, \%claims, alg => 'HS256'|'none'|'HS512')
sub token
{
	my ($secret, $claims, %o) = @_;
	my $alg = $o{alg} // 'HS256';
	my $json = JSON::PP->new->canonical;
	my $head = encode_base64url($json->encode({ alg => $alg, typ => 'JWT' }));
	my $body = encode_base64url($json->encode($claims));
	return "$head.$body." if $alg eq 'none';
	my $sig = encode_base64url(hmac_sha256("$head.$body", $secret));
	return "$head.$body.$sig";
}

1;
