/*-------------------------------------------------------------------------
 *
 * extension/error_class.h
 *	  Provider error classes: one word, one SQLSTATE each.
 *
 * An *error class* says what went wrong with one fetch in words a user can
 * act on. The word goes into md.raw_responses.error_class (and later
 * md.job_runs); the SQLSTATE (errors.h) is what md_price raises.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_ERROR_CLASS_H
#define MD_ERROR_CLASS_H

typedef enum MdErrorClass
{
	MD_OK = 0,
	MD_UNKNOWN_SYMBOL,
	MD_NO_DATA,
	MD_RATE_LIMITED,
	MD_AUTH_FAILED,
	MD_UNAVAILABLE,
	MD_MALFORMED
} MdErrorClass;

/* "unknown_symbol", ...; NULL for MD_OK */
extern const char *md_error_class_word(MdErrorClass cls);

/* the SQLSTATE raised for the class */
extern int	md_error_class_sqlstate(MdErrorClass cls);

/*
 * true when failover should go on to the next provider: the provider could
 * not answer (unavailable, rate limited, refused our key, spoke nonsense);
 * false when it answered about the symbol (a price, unknown, no data).
 */
extern bool md_error_class_fails_over(MdErrorClass cls);

#endif							/* MD_ERROR_CLASS_H */
