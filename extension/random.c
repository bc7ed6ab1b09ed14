/*-------------------------------------------------------------------------
 *
 * extension/random.c
 *	  _md_random_hex(nbytes): cryptographically strong random text, used to
 *	  make API keys. pgcrypto is not required for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(md_random_hex);

Datum
md_random_hex(PG_FUNCTION_ARGS)
{
	int32		nbytes = PG_GETARG_INT32(0);
	uint8		buf[64];
	char		hex[2 * sizeof(buf) + 1];

	if (nbytes < 1 || nbytes > (int32) sizeof(buf))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("nbytes must be between 1 and %d", (int) sizeof(buf))));
	if (!pg_strong_random(buf, nbytes))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes")));
	hex[hex_encode((const char *) buf, nbytes, hex)] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(hex));
}
