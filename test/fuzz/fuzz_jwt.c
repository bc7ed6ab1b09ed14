/*
 * test/fuzz/fuzz_jwt.c
 *	libFuzzer target: api/src/jwt_check.c, the API's bearer-token check.
 *
 * The first byte chooses what the rest is: even, a token as a client
 * sends it (after "Bearer "); odd, the claims of a token we sign with the
 * right secret, so that the fuzzer reaches the claim checks behind the
 * signature (exp, nbf, iat, iss, aud, the role, sub). Either way the
 * verdict must be coherent: a good token has a role and a caller, a
 * refused one a reason.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "jwt_check.h"

#define SECRET	"a-fuzzing-secret-of-at-least-32-bytes-long"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct api_jwt_rules rules = {
		SECRET, sizeof(SECRET) - 1, "role", "https://issuer.test",
		"marketdata", 86400
	};
	struct api_jwt_verdict	 v;
	jwt_t			*jwt = NULL;
	char			*text, *token = NULL;
	int			 ok;

	if (size < 1 || size > 8192)
		return (0);
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1) {
		if (jwt_new(&jwt) == 0 &&
		    jwt_add_grants_json(jwt, text) == 0 &&
		    jwt_set_alg(jwt, JWT_ALG_HS256,
		    (const unsigned char *)SECRET, sizeof(SECRET) - 1) == 0)
			token = jwt_encode_str(jwt);
		jwt_free(jwt);
	} else {
		token = strdup(text);
	}
	if (token != NULL) {
		ok = api_jwt_check(&rules, token, 1800000000L, &v);
		if (ok && (v.why != NULL || v.ident[0] == '\0'))
			abort();
		if (!ok && v.why == NULL)
			abort();
		if (ok && strncmp(v.ident, "jwt:", 4) &&
		    strncmp(v.ident, "jwt-token:", 10))
			abort();
		free(token);
	}
	free(text);
	return (0);
}
