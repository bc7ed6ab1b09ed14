/*-------------------------------------------------------------------------
 *
 * extension/symbol_meta.h
 *	  What providers say of a symbol (exchange, time zone, name), kept in
 *	  md.symbols the first time a symbol is seen with it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SYMBOL_META_H
#define MD_SYMBOL_META_H

#include "postgres.h"

/* each NULL when the provider does not say */
typedef struct MdSymbolMeta
{
	char	   *exchange;
	char	   *time_zone;		/* an IANA name: America/New_York */
	char	   *name;
} MdSymbolMeta;

struct MdPriceBatch;

/*
 * Insert an md.symbols row for each symbol of the batch that has a time
 * zone from its provider and no row yet (ON CONFLICT DO NOTHING: a row an
 * operator wrote or changed is never overwritten). args are the sink's
 * arrays (args[0] the symbols, args[5] the currencies). Call inside SPI,
 * before the bars: the new row's time zone places the batch's day bars.
 * Each process asks once per symbol.
 */
extern void md_symbols_learn(struct MdPriceBatch *batch, Datum *args);

#endif							/* MD_SYMBOL_META_H */
