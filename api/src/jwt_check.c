/*
 * api/src/jwt_check.c
 *	Whether a bearer token is good, and whose: HS256 only (libjwt), a
 *	numeric exp at most max_lifetime ahead, nbf and iat (when present)
 *	not in the future, iss and aud when configured.
 *
 * The *caller* (ident) is "jwt:" and sub; a token without sub is its own
 * caller ("jwt-token:" and the start of its SHA-256), so such tokens do
 * not share one rate-limit bucket. Only libjwt, jansson and libcrypto:
 * test/fuzz/fuzz_jwt.c feeds it arbitrary tokens.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/sha.h>

#include "jwt_check.h"

/* Tolerated clock difference with the token's issuer, in seconds. */
#define JWT_LEEWAY		60

/*
 * A NumericDate claim (RFC 7519: a JSON number of seconds): 1 when it is
 * one, 0 when absent, -1 when it is something else (a string).
 */
static int
jwt_date(jwt_t *jwt, const char *claim, long *value)
{
	char	*json;
	json_t	*v;
	int	 rc = -1;

	/* libjwt's jwt_get_grant_int() reads a string "123" as 0, no error */
	if ((json = jwt_get_grants_json(jwt, claim)) == NULL)
		return (0);
	v = json_loads(json, JSON_DECODE_ANY, NULL);
	free(json);
	if (v != NULL && json_is_number(v) && json_number_value(v) > 0 &&
	    json_number_value(v) < 1e15) {
		*value = (long)json_number_value(v);
		rc = 1;
	}
	json_decref(v);
	return (rc);
}

/* aud: a string or an array of strings, one of them ours. */
static int
jwt_audience_ok(jwt_t *jwt, const char *audience)
{
	const char	*aud;
	char		*json;
	json_t		*v, *item;
	size_t		 i;
	int		 ok = 0;

	if ((aud = jwt_get_grant(jwt, "aud")) != NULL)
		return (!strcmp(aud, audience));
	if ((json = jwt_get_grants_json(jwt, "aud")) == NULL)
		return (0);
	v = json_loads(json, JSON_DECODE_ANY, NULL);
	free(json);
	if (v != NULL && json_is_array(v)) {
		json_array_foreach(v, i, item) {
			if (json_is_string(item) &&
			    !strcmp(json_string_value(item), audience))
				ok = 1;
		}
	}
	json_decref(v);
	return (ok);
}

/* Why the decoded token is refused, NULL when it is not. */
static const char *
jwt_refusal(const struct api_jwt_rules *r, jwt_t *jwt, long now)
{
	const char	*iss;
	long		 exp, nbf, iat;
	int		 rc;

	/* HS256 only: never "none", never another algorithm */
	if (jwt_get_alg(jwt) != JWT_ALG_HS256)
		return ("token algorithm must be HS256");
	if (jwt_date(jwt, "exp", &exp) != 1)
		return ("token has no numeric exp");
	if (exp <= now)
		return ("token expired");
	if (exp - now > r->max_lifetime)
		return ("token lives longer than MD_API_JWT_MAX_LIFETIME");
	if ((rc = jwt_date(jwt, "nbf", &nbf)) < 0 ||
	    (rc == 1 && nbf > now + JWT_LEEWAY))
		return ("token not valid yet (nbf)");
	if ((rc = jwt_date(jwt, "iat", &iat)) < 0 ||
	    (rc == 1 && iat > now + JWT_LEEWAY))
		return ("token issued in the future (iat)");
	if (r->issuer != NULL && ((iss = jwt_get_grant(jwt, "iss")) == NULL ||
	    strcmp(iss, r->issuer)))
		return ("token issuer (iss) is not accepted");
	if (r->audience != NULL && !jwt_audience_ok(jwt, r->audience))
		return ("token audience (aud) is not this API");
	return (NULL);
}

int
api_jwt_check(const struct api_jwt_rules *r, const char *token, long now,
    struct api_jwt_verdict *v)
{
	jwt_t		*jwt = NULL;
	const char	*role, *sub;
	unsigned char	 d[SHA256_DIGEST_LENGTH];

	memset(v, 0, sizeof(*v));
	if (jwt_decode(&jwt, token, (const unsigned char *)r->secret,
	    (int)r->secret_len) != 0 || jwt == NULL) {
		v->why = "invalid token";
		return (0);
	}
	if ((v->why = jwt_refusal(r, jwt, now)) != NULL) {
		jwt_free(jwt);
		return (0);
	}
	role = jwt_get_grant(jwt, r->role_claim);
	(void)snprintf(v->role, sizeof(v->role), "%s", role ? role : "");
	if ((sub = jwt_get_grant(jwt, "sub")) != NULL) {
		(void)snprintf(v->ident, sizeof(v->ident), "jwt:%.64s", sub);
	} else {
		/* no subject: each token is its own caller, not one for all */
		(void)SHA256((const unsigned char *)token, strlen(token), d);
		(void)snprintf(v->ident, sizeof(v->ident),
		    "jwt-token:%02x%02x%02x%02x%02x%02x%02x%02x",
		    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
	}
	jwt_free(jwt);
	return (1);
}
