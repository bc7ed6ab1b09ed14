/*
 * api/src/jwt_check.h
 *	A bearer token's verdict (jwt_check.c): no Kore in here, so the
 *	fuzzer (test/fuzz/) links it alone.
 */

#ifndef API_JWT_CHECK_H
#define API_JWT_CHECK_H

#include <stddef.h>

struct api_jwt_rules {
	const char	*secret;
	size_t		 secret_len;
	const char	*role_claim;
	const char	*issuer;	/* NULL: iss not checked */
	const char	*audience;	/* NULL: aud not checked */
	long		 max_lifetime;	/* s from now to exp */
};

struct api_jwt_verdict {
	const char	*why;		/* refused: a fixed text */
	char		 role[16];	/* the role claim, "" when none */
	char		 ident[80];	/* the caller for rate limits */
};

/* 1: the token is good (role and ident set); 0: refused (why set). */
int	api_jwt_check(const struct api_jwt_rules *, const char *, long,
	    struct api_jwt_verdict *);

#endif
