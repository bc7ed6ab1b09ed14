/*-------------------------------------------------------------------------
 *
 * extension/symbol_meta.c
 *	  md.symbols rows from what providers say (Yahoo's chart meta names the
 *	  exchange's time zone), so that day bars start at the market's
 *	  midnight without anyone typing it in.
 *
 * The insert takes the bars' advisory locks of the batch first: its
 * trigger rebuilds the symbol's day bars under the same locks, and two
 * sessions that learn overlapping symbols are then ordered by the locks
 * instead of waiting on each other's new rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "bars.h"
#include "sink.h"
#include "spi_util.h"
#include "symbol.h"
#include "symbol_meta.h"
#include "time_zone.h"

/*
 * A time zone PostgreSQL does not know, a currency the table refuses and
 * over-long texts are left out rather than failing the prices' batch.
 */
#define LEARN_SQL \
	"INSERT INTO md.symbols (symbol, exchange, time_zone, currency, name)" \
	" SELECT s, left(e, 100), z, CASE WHEN c ~ '^[A-Za-z]{3,5}$' THEN c END, left(n, 200)" \
	" FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])," \
	"   pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[])," \
	"   pg_catalog.unnest($5::text[])) AS t(s, e, z, c, n)" \
	" WHERE NOT EXISTS (SELECT 1 FROM md.symbols x WHERE x.symbol = t.s)" \
	" ORDER BY s" \
	" ON CONFLICT (symbol) DO NOTHING"

typedef struct KnownSymbol
{
	char		symbol[MD_SYMBOL_MAX_LEN + 1];
} KnownSymbol;

/* the symbols this process has learned or found known */
static HTAB *known = NULL;
static SPIPlanPtr learn_plan = NULL;

void
md_symbols_learn(MdPriceBatch *batch, Datum *args)
{
	Oid			argtypes[5] = {TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	TEXTARRAYOID, TEXTARRAYOID};
	Datum		learn_args[5];
	char	  **symbols = palloc(sizeof(char *) * batch->nrows);
	char	  **exchanges = palloc(sizeof(char *) * batch->nrows);
	char	  **zones = palloc(sizeof(char *) * batch->nrows);
	char	  **currencies = palloc(sizeof(char *) * batch->nrows);
	char	  **names = palloc(sizeof(char *) * batch->nrows);
	int			n = 0;
	int			i;

	if (known == NULL)
	{
		HASHCTL		ctl = {0};

		ctl.keysize = MD_SYMBOL_MAX_LEN + 1;
		ctl.entrysize = sizeof(KnownSymbol);
		ctl.hcxt = TopMemoryContext;
		known = hash_create("marketdata known symbols", 1024, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	for (i = 0; i < batch->nrows; i++)
	{
		MdPriceRow *row = &batch->rows[i];
		bool		found;

		if (row->meta == NULL || row->meta->time_zone == NULL ||
			strlen(row->symbol) > MD_SYMBOL_MAX_LEN)
			continue;
		/* entered now: a symbol twice in the batch is asked once */
		hash_search(known, row->symbol, HASH_ENTER, &found);
		if (found || !md_time_zone_known(row->meta->time_zone))
			continue;
		symbols[n] = row->symbol;
		exchanges[n] = row->meta->exchange;
		zones[n] = row->meta->time_zone;
		currencies[n] = row->currency;
		names[n] = row->meta->name;
		n++;
	}
	if (n == 0)
		return;
	md_bars_lock(args);
	learn_args[0] = PointerGetDatum(md_text_array(symbols, n));
	learn_args[1] = PointerGetDatum(md_text_array(exchanges, n));
	learn_args[2] = PointerGetDatum(md_text_array(zones, n));
	learn_args[3] = PointerGetDatum(md_text_array(currencies, n));
	learn_args[4] = PointerGetDatum(md_text_array(names, n));
	md_spi_run(md_spi_plan(&learn_plan, LEARN_SQL, 5, argtypes),
			   learn_args, NULL, false, 0, SPI_OK_INSERT, "learning symbols");
}
