/*
 * api/src/query.c
 *	The query string's rules, before Kore's parser sees it.
 *
 * Kore 4.1 keeps only the first HTTP_MAX_QUERY_ARGS (20) parameters of a
 * query, so a "symbol" after 19 others was silently missing, and of a
 * repeated name its first value silently won. Here a query with more than
 * API_QUERY_MAX parameters, or with a name twice, is a 400; names nobody
 * validates are dropped (by Kore's validators) as before.
 */

#include <string.h>

#include "api.h"

#define API_QUERY_MAX	16	/* below Kore's HTTP_MAX_QUERY_ARGS */

/* Length of the name of the parameter at p (up to '=', '&' or the end). */
static size_t
name_len(const char *p)
{
	return (strcspn(p, "=&"));
}

int
api_query_parse(struct http_request *req)
{
	const char	*params[API_QUERY_MAX], *p;
	size_t		 n, len;
	int		 count = 0, i;

	p = req->query_string;
	while (p != NULL && *p != '\0') {
		len = name_len(p);
		if (len > 0 || p[len] == '=') {
			if (count == API_QUERY_MAX) {
				api_error(req, 400, "invalid_argument",
				    "too many query parameters (at most %d)",
				    API_QUERY_MAX);
				return (KORE_RESULT_ERROR);
			}
			for (i = 0; i < count; i++) {
				n = name_len(params[i]);
				if (n == len && !memcmp(params[i], p, len)) {
					api_error(req, 400, "invalid_argument",
					    "query parameter \"%.*s\" is "
					    "repeated", (int)(len > 40 ?
					    40 : len), p);
					return (KORE_RESULT_ERROR);
				}
			}
			params[count++] = p;
		}
		p = strchr(p, '&');
		if (p != NULL)
			p++;
	}
	http_populate_qs(req);
	return (KORE_RESULT_OK);
}
