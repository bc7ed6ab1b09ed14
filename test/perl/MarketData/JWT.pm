# MarketData::JWT: HS256 tokens for tests (and deliberately broken ones).
package MarketData::JWT;

use strict;
use warnings;
use Digest::SHA qw(hmac_sha256 hmac_sha512);
use JSON::PP;
use MIME::Base64 qw(encode_base64url);

# token($secret, \%claims, alg => 'HS256'|'HS512'|'none'|'RS256')
#   HS512 is really signed with HMAC-SHA512, so that it passes libjwt's
#   signature check and only the API's algorithm check refuses it. RS256
#   is the algorithm-confusion attack: the header says RS256, the
#   signature is HMAC-SHA256 with the secret.
sub token
{
	my ($secret, $claims, %o) = @_;
	my $alg = $o{alg} // 'HS256';
	my $json = JSON::PP->new->canonical;
	my $head = encode_base64url($json->encode({ alg => $alg, typ => 'JWT' }));
	my $body = encode_base64url($json->encode($claims));
	return "$head.$body." if $alg eq 'none';
	my $mac = $alg eq 'HS512' ? \&hmac_sha512 : \&hmac_sha256;
	my $sig = encode_base64url($mac->("$head.$body", $secret));
	return "$head.$body.$sig";
}

1;
