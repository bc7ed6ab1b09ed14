/*-------------------------------------------------------------------------
 *
 * extension/raw_responses.c
 *	  md.raw_responses: every provider response, good or bad, as stored.
 *
 * A *raw response* is what one fetch got back (or the transport failure
 * instead), with secrets masked and a body that is valid text. Fetching
 * stores a batch's responses before its prices, so that each price row
 * carries its raw_response_id; kept_responses.c stores again, with the
 * same ids, those that a failing md_price rolled back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "guc.h"
#include "http.h"
#include "raw_responses.h"
#include "secrets.h"
#include "spi_util.h"

#define RAW_IDS_SQL \
	"SELECT pg_catalog.nextval('md.raw_responses_id_seq')" \
	" FROM pg_catalog.generate_series(1, $1)"

/*
 * Every row records the stored body's size and SHA-256; $9 false keeps the
 * body itself only for responses with an error class
 * (marketdata.raw_response_bodies = errors).
 */
#define RAW_INSERT_SQL \
	"INSERT INTO md.raw_responses" \
	" (id, provider, symbol, url, http_status, latency_ms, error_class, body," \
	"  body_bytes, body_sha256)" \
	" SELECT i, p, s, u, h, l, c, CASE WHEN $9 OR c IS NOT NULL THEN b END," \
	"  pg_catalog.octet_length(b)," \
	"  pg_catalog.sha256(pg_catalog.convert_to(b, 'UTF8'))" \
	" FROM ROWS FROM (pg_catalog.unnest($1::int8[])," \
	"  pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[])," \
	"  pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::int4[])," \
	"  pg_catalog.unnest($6::float8[]), pg_catalog.unnest($7::text[])," \
	"  pg_catalog.unnest($8::text[])) AS t(i, p, s, u, h, l, c, b)" \
	" ON CONFLICT (id) DO NOTHING"

static SPIPlanPtr raw_ids_plan = NULL;
static SPIPlanPtr raw_insert_plan = NULL;

/*
 * A body as text we can store: the key masked in the bytes as received
 * (and as percent-encoded, as a body echoing our URL would hold it), then
 * hex-encoded when it is not valid text.
 */
char *
md_raw_response_body(MdFetch *f)
{
	char	   *body;
	size_t		len;

	if (f->body == NULL)
		return NULL;
	body = md_mask_secret_bytes(f->body, f->body_len, f->key, &len);
	if (f->key != NULL)
		body = md_mask_secret_bytes(body, len, md_http_escape(f->key), &len);
	if (memchr(body, '\0', len) == NULL && pg_verifymbstr(body, len, true))
		return body;
	else
	{
		char	   *hex = palloc(len * 2 + 3);

		hex[0] = '\\';
		hex[1] = 'x';
		hex[2 + hex_encode(body, len, hex + 2)] = '\0';
		return hex;
	}
}

void
md_raw_response_mask(MdFetch *f)
{
	f->body = md_raw_response_body(f);
	f->body_len = f->body ? strlen(f->body) : 0;
	if (f->key != NULL)
	{
		char	   *escaped = md_http_escape(f->key);

		f->url = md_mask_secret(md_mask_secret(f->url, f->key), escaped);
		f->message = md_mask_secret(f->message, f->key);
	}
}

/* every response of the batch into md.raw_responses; ids into the fetches */
void
md_raw_responses_store(MdFetch *fetches, int n)
{
	MdFetch   **all = palloc(sizeof(MdFetch *) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		all[i] = &fetches[i];
	md_raw_responses_store_each(all, n);
}

void
md_raw_responses_store_each(MdFetch **fetches, int n)
{
	MdFetch   **kept = palloc(sizeof(MdFetch *) * Max(n, 1));
	int			nkept = 0;
	int			i;
	Datum		args[1];
	Oid			id_types[1] = {INT4OID};

	for (i = 0; i < n; i++)
		if (fetches[i]->responded)
			kept[nkept++] = fetches[i];
	if (nkept == 0)
		return;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = Int32GetDatum(nkept);
	md_spi_run(md_spi_plan(&raw_ids_plan, RAW_IDS_SQL, 1, id_types),
			   args, NULL, false, 0, SPI_OK_SELECT, "raw response ids");
	if (SPI_processed != (uint64) nkept)
		elog(ERROR, "got " UINT64_FORMAT " raw response ids for %d responses",
			 SPI_processed, nkept);
	for (i = 0; i < nkept; i++)
	{
		bool		isnull;

		kept[i]->raw_response_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 1, &isnull));
	}
	md_raw_responses_insert(kept, nkept);
	SPI_finish();
}

void
md_raw_responses_insert(MdFetch **kept, int nkept)
{
	Datum		args[9];
	Oid			types[9] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	INT4ARRAYOID, FLOAT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLOID};
	Datum	   *ids = palloc(sizeof(Datum) * nkept);
	Datum	   *statuses = palloc(sizeof(Datum) * nkept);
	bool	   *status_nulls = palloc(sizeof(bool) * nkept);
	Datum	   *latencies = palloc(sizeof(Datum) * nkept);
	char	  **providers = palloc(sizeof(char *) * nkept);
	char	  **symbols = palloc(sizeof(char *) * nkept);
	char	  **urls = palloc(sizeof(char *) * nkept);
	char	  **classes = palloc(sizeof(char *) * nkept);
	char	  **bodies = palloc(sizeof(char *) * nkept);
	int			i;

	for (i = 0; i < nkept; i++)
	{
		MdFetch    *f = kept[i];

		ids[i] = Int64GetDatum(f->raw_response_id);
		providers[i] = f->provider;
		symbols[i] = f->symbol;
		urls[i] = f->url;
		statuses[i] = Int32GetDatum((int32) f->http_status);
		status_nulls[i] = (f->http_status == 0);
		latencies[i] = Float8GetDatum(f->latency_ms);
		classes[i] = (char *) md_error_class_word(f->cls);
		bodies[i] = f->body;
	}
	args[0] = PointerGetDatum(md_datum_array(ids, NULL, nkept, INT8OID));
	args[1] = PointerGetDatum(md_text_array(providers, nkept));
	args[2] = PointerGetDatum(md_text_array(symbols, nkept));
	args[3] = PointerGetDatum(md_text_array(urls, nkept));
	args[4] = PointerGetDatum(md_datum_array(statuses, status_nulls, nkept, INT4OID));
	args[5] = PointerGetDatum(md_datum_array(latencies, NULL, nkept, FLOAT8OID));
	args[6] = PointerGetDatum(md_text_array(classes, nkept));
	args[7] = PointerGetDatum(md_text_array(bodies, nkept));
	args[8] = BoolGetDatum(md_raw_response_bodies == MD_BODIES_ALL);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	md_spi_run(md_spi_plan(&raw_insert_plan, RAW_INSERT_SQL, 9, types),
			   args, NULL, false, 0, SPI_OK_INSERT, "storing raw responses");
	SPI_finish();
}
