/*
 * test/fuzz/fuzz_symbol.c
 *	libFuzzer target: api/src/symbol.c, the rules for symbols and
 *	provider names in query strings (a symbol is part of a Redis key).
 *
 * A symbol the API accepts must keep to the rule (1-32 of A-Z 0-9 . - ^
 * = _ /, starting with a letter, a digit or ^, no ".."), and normalising
 * it again must give it back unchanged.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*in, out[40], again[40];
	size_t	 i, n;

	in = malloc(size + 1);
	memcpy(in, data, size);
	in[size] = '\0';
	if (api_symbol_normalize(in, out, sizeof(out)) == KORE_RESULT_OK) {
		n = strlen(out);
		if (n < 1 || n > 32 || strstr(out, "..") != NULL)
			abort();
		for (i = 0; i < n; i++) {
			if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-^=_/",
			    out[i]))
				abort();
		}
		if (out[0] == '.' || out[0] == '-' || out[0] == '=' ||
		    out[0] == '_' || out[0] == '/')
			abort();
		if (api_symbol_normalize(out, again, sizeof(again)) !=
		    KORE_RESULT_OK || strcmp(out, again))
			abort();
	}
	if (api_provider_ok(in)) {
		n = strlen(in);
		if (n < 1 || n > 63 || in[0] < 'a' || in[0] > 'z')
			abort();
	}
	free(in);
	return (0);
}
