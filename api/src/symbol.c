/*
 * api/src/symbol.c
 *	Symbol and provider name rules, and their Kore validators.
 *
 * The rule is the extension's (extension/symbol.c, md._symbol_ok): after
 * trimming and upper-casing, 1-32 of A-Z 0-9 . - ^ = _ /, starting with a
 * letter, a digit or ^, without "..". The API checks it before touching
 * Redis (a symbol is part of a cache key); test/t/031_api_validation.pl
 * checks that both sides agree on a list of good and bad symbols.
 */

#include <ctype.h>
#include <string.h>

#include "api.h"

int	v_symbol(struct http_request *, char *);
int	v_provider(struct http_request *, char *);

static int
symbol_char_ok(char c)
{
	return ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '.' || c == '-' || c == '^' || c == '=' || c == '_' ||
	    c == '/');
}

/* Writes the normalised symbol to out; KORE_RESULT_ERROR when invalid. */
int
api_symbol_normalize(const char *in, char *out, size_t outlen)
{
	size_t	start, end, i, n;
	char	c;

	start = 0;
	end = strlen(in);
	while (start < end && isspace((unsigned char)in[start]))
		start++;
	while (end > start && isspace((unsigned char)in[end - 1]))
		end--;
	n = end - start;
	if (n == 0 || n > 32 || n >= outlen)
		return (KORE_RESULT_ERROR);

	for (i = 0; i < n; i++) {
		c = (char)toupper((unsigned char)in[start + i]);
		if (!symbol_char_ok(c))
			return (KORE_RESULT_ERROR);
		if (i == 0 && !((c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '^'))
			return (KORE_RESULT_ERROR);
		if (c == '.' && i > 0 && out[i - 1] == '.')
			return (KORE_RESULT_ERROR);
		out[i] = c;
	}
	out[n] = '\0';
	return (KORE_RESULT_OK);
}

/* md.providers.name: ^[a-z][a-z0-9_]{0,62}$ */
int
api_provider_ok(const char *p)
{
	size_t	i, n = strlen(p);

	if (n == 0 || n > 63 || !(p[0] >= 'a' && p[0] <= 'z'))
		return (0);
	for (i = 1; i < n; i++) {
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= '0' && p[i] <= '9') || p[i] == '_'))
			return (0);
	}
	return (1);
}

int
v_symbol(struct http_request *req, char *data)
{
	char	buf[40];

	(void)req;
	return (api_symbol_normalize(data, buf, sizeof(buf)));
}

int
v_provider(struct http_request *req, char *data)
{
	(void)req;
	return (api_provider_ok(data) ? KORE_RESULT_OK : KORE_RESULT_ERROR);
}
