/*-------------------------------------------------------------------------
 *
 * extension/error_class.c
 *	  Provider error classes: words, SQLSTATEs, failover rule.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "error_class.h"
#include "errors.h"

const char *
md_error_class_word(MdErrorClass cls)
{
	switch (cls)
	{
		case MD_OK:
			return NULL;
		case MD_UNKNOWN_SYMBOL:
			return "unknown_symbol";
		case MD_NO_DATA:
			return "no_data";
		case MD_RATE_LIMITED:
			return "rate_limited";
		case MD_AUTH_FAILED:
			return "auth_failed";
		case MD_UNAVAILABLE:
			return "unavailable";
		case MD_MALFORMED:
			return "malformed";
	}
	elog(ERROR, "unknown error class %d", (int) cls);
	return NULL;				/* keep the compiler quiet */
}

int
md_error_class_sqlstate(MdErrorClass cls)
{
	switch (cls)
	{
		case MD_OK:
			break;
		case MD_UNKNOWN_SYMBOL:
			return ERRCODE_MD_UNKNOWN_SYMBOL;
		case MD_NO_DATA:
			return ERRCODE_MD_NO_DATA;
		case MD_RATE_LIMITED:
			return ERRCODE_MD_RATE_LIMITED;
		case MD_AUTH_FAILED:
			return ERRCODE_MD_AUTH_FAILED;
		case MD_UNAVAILABLE:
			return ERRCODE_MD_UNAVAILABLE;
		case MD_MALFORMED:
			return ERRCODE_MD_MALFORMED;
	}
	elog(ERROR, "no SQLSTATE for error class %d", (int) cls);
	return 0;					/* keep the compiler quiet */
}

bool
md_error_class_fails_over(MdErrorClass cls)
{
	return cls == MD_UNAVAILABLE || cls == MD_RATE_LIMITED ||
		cls == MD_AUTH_FAILED || cls == MD_MALFORMED;
}
