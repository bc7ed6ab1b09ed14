/*-------------------------------------------------------------------------
 *
 * extension/symbol.h
 *	  Ticker symbols: trimmed, upper-cased, 1-32 of A-Z 0-9 . - ^ = _ /
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SYMBOL_H
#define MD_SYMBOL_H

#define MD_SYMBOL_MAX_LEN 32
/* most symbols of one job or one md_fetch_many call */
#define MD_MAX_SYMBOLS 500

/*
 * Normalise a symbol of len bytes into a palloc'd string. Returns NULL and
 * sets *problem to a short reason when the text is not a valid symbol.
 */
extern char *md_symbol_normalize(const char *text, int len, const char **problem);

/* The same, raising an error that names the bad symbol. */
extern char *md_symbol_normalize_or_error(const char *text, int len);

#endif							/* MD_SYMBOL_H */
