/*-------------------------------------------------------------------------
 *
 * worker/price_event.c
 *	  Decoding of a Kafka price event (DESIGN.md, topic price-events):
 *
 *	  {"symbol":"AAPL","price":187.42,"timestamp":"2026-11-20T15:30:00Z",
 *	   "source":"yahoo_finance","raw_response_id":"…"}
 *
 * The message is parsed by PostgreSQL's own JSON parser with semantic
 * actions that keep the top-level fields we know; extra fields are
 * accepted and ignored. "timestamp" is ISO-8601 (a string; without a zone
 * it is UTC, since the consumer runs with timezone UTC) or epoch seconds (a
 * number, or a string of digits). "price" and "volume" are JSON numbers or
 * strings holding one. "raw_response_id" is not kept: it names a response
 * in the producer's database, not in ours.
 *
 * Every problem this file can recognise comes back as a reason string, so
 * that a batch of messages is decoded without a subtransaction each.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "price_event.h"

typedef enum EventField
{
	FIELD_OTHER = -1,
	FIELD_SYMBOL,
	FIELD_PRICE,
	FIELD_TIMESTAMP,
	FIELD_SOURCE,
	FIELD_VOLUME,
	FIELD_CURRENCY,
	FIELD_COUNT
} EventField;

static const char *const field_names[FIELD_COUNT] = {
	"symbol", "price", "timestamp", "source", "volume", "currency"
};

/* what the semantic actions gather */
typedef struct EventParse
{
	int			depth;
	bool		top_is_object;
	EventField	field;			/* top-level field being read */
	char	   *value[FIELD_COUNT]; /* scalar text, NULL when absent or null */
	JsonTokenType type[FIELD_COUNT];
	EventField	not_scalar;		/* a known field holding an object/array */
} EventParse;

static void
on_object_start(void *state)
{
	EventParse *p = (EventParse *) state;

	if (p->depth == 0)
		p->top_is_object = true;
	else if (p->depth == 1 && p->field != FIELD_OTHER && p->not_scalar == FIELD_OTHER)
		p->not_scalar = p->field;
	p->depth++;
}

static void
on_array_start(void *state)
{
	EventParse *p = (EventParse *) state;

	if (p->depth == 1 && p->field != FIELD_OTHER && p->not_scalar == FIELD_OTHER)
		p->not_scalar = p->field;
	p->depth++;
}

static void
on_struct_end(void *state)
{
	((EventParse *) state)->depth--;
}

static void
on_field_start(void *state, char *fname, bool isnull)
{
	EventParse *p = (EventParse *) state;
	int			i;

	if (p->depth != 1)
		return;
	p->field = FIELD_OTHER;
	for (i = 0; i < FIELD_COUNT; i++)
		if (strcmp(fname, field_names[i]) == 0)
			p->field = (EventField) i;
}

static void
on_scalar(void *state, char *token, JsonTokenType tokentype)
{
	EventParse *p = (EventParse *) state;

	if (p->depth != 1 || p->field == FIELD_OTHER)
		return;
	/* a repeated key: the last one wins, as in jsonb */
	p->value[p->field] = (tokentype == JSON_TOKEN_NULL) ? NULL : token;
	p->type[p->field] = tokentype;
}

/*
 * True when text is a plain decimal number that numeric_in takes without
 * raising: digits, one point, an exponent within numeric's range.
 */
static bool
plain_number(const char *text)
{
	const char *s = text;
	bool		digits = false;
	long		exponent = 0;

	if (strlen(text) > 1000)
		return false;
	if (*s == '-' || *s == '+')
		s++;
	while (isdigit((unsigned char) *s))
		s++, digits = true;
	if (*s == '.')
	{
		s++;
		while (isdigit((unsigned char) *s))
			s++, digits = true;
	}
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E')
	{
		char	   *end;

		s++;
		errno = 0;
		exponent = strtol(s, &end, 10);
		if (end == s || errno != 0 || !isdigit((unsigned char) end[-1]))
			return false;
		s = end;
	}
	return *s == '\0' && exponent >= -1000 && exponent <= 1000;
}

/* a number given as a JSON number or as a string holding one */
static char *
decode_number(EventParse *p, EventField f, Numeric *out)
{
	const char *text = p->value[f];

	if (p->type[f] != JSON_TOKEN_NUMBER && p->type[f] != JSON_TOKEN_STRING)
		return psprintf("%s must be a number", field_names[f]);
	if (!plain_number(text))
		return psprintf("%s must be a number, not \"%.64s\"", field_names[f], text);
	*out = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(text),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
	return NULL;
}

static char *
decode_epoch(const char *text, TimestampTz *out)
{
	char	   *end;
	double		seconds;

	errno = 0;
	seconds = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(seconds) ||
		seconds < -1e11 || seconds > 1e11)
		return psprintf("timestamp %.64s is not epoch seconds in range", text);
	*out = (TimestampTz) rint(seconds * USECS_PER_SEC) -
		(TimestampTz) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	return NULL;
}

/* ISO-8601 through PostgreSQL's date parser, reporting instead of raising */
static char *
decode_iso(const char *text, TimestampTz *out)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	int			tz;
	struct pg_tm tm;
	fsec_t		fsec;
	int			dterr;

	/* words such as "now" or "epoch" are not a market's time */
	if (!isdigit((unsigned char) text[0]) || strlen(text) > MAXDATELEN)
		return psprintf("timestamp \"%.64s\" is not ISO-8601 or epoch seconds", text);
	dterr = ParseDateTime(text, workbuf, sizeof(workbuf), field, ftype,
						  MAXDATEFIELDS, &nf);
	if (dterr == 0)
		dterr = DecodeDateTime(field, ftype, nf, &dtype, &tm, &fsec, &tz);
	if (dterr != 0 || dtype != DTK_DATE)
		return psprintf("timestamp \"%.64s\" is not ISO-8601 or epoch seconds", text);
	if (tm2timestamp(&tm, fsec, &tz, out) != 0)
		return psprintf("timestamp \"%.64s\" is out of range", text);
	return NULL;
}

static char *
decode_timestamp(EventParse *p, TimestampTz *out)
{
	const char *text = p->value[FIELD_TIMESTAMP];

	if (p->type[FIELD_TIMESTAMP] == JSON_TOKEN_NUMBER)
		return decode_epoch(text, out);
	if (p->type[FIELD_TIMESTAMP] != JSON_TOKEN_STRING)
		return pstrdup("timestamp must be an ISO-8601 string or epoch seconds");
	if (text[0] != '\0' && strspn(text, "0123456789.") == strlen(text))
		return decode_epoch(text, out);
	return decode_iso(text, out);
}

char *
md_price_event_decode(const char *data, size_t len, MdPriceRow *row)
{
	EventParse	p;
	JsonSemAction sem;
	JsonLexContext *lex;
	JsonParseErrorType err;
	char	   *problem;
	int			i;

	if (len == 0)
		return pstrdup("empty message");
	if (!pg_verifymbstr(data, (int) len, true))
		return pstrdup("message is not valid UTF-8 text");

	memset(&p, 0, sizeof(p));
	p.field = FIELD_OTHER;
	p.not_scalar = FIELD_OTHER;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &p;
	sem.object_start = on_object_start;
	sem.object_end = on_struct_end;
	sem.array_start = on_array_start;
	sem.array_end = on_struct_end;
	sem.object_field_start = on_field_start;
	sem.scalar = on_scalar;

	lex = makeJsonLexContextCstringLen((char *) data, (int) len,
									   GetDatabaseEncoding(), true);
	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS)
		return psprintf("not valid JSON: %s", json_errdetail(err, lex));
	if (!p.top_is_object)
		return pstrdup("not a JSON object");
	if (p.not_scalar != FIELD_OTHER)
		return psprintf("%s must not be an object or array", field_names[p.not_scalar]);

	for (i = 0; i < FIELD_COUNT; i++)
		if (p.value[i] == NULL && i != FIELD_VOLUME && i != FIELD_CURRENCY)
			return psprintf("%s is missing", field_names[i]);

	if (p.type[FIELD_SYMBOL] != JSON_TOKEN_STRING)
		return pstrdup("symbol must be a string");
	row->symbol = p.value[FIELD_SYMBOL];
	if (p.type[FIELD_SOURCE] != JSON_TOKEN_STRING)
		return pstrdup("source must be a string");
	row->provider = p.value[FIELD_SOURCE];
	if ((problem = decode_number(&p, FIELD_PRICE, &row->price)) != NULL)
		return problem;
	if ((problem = decode_timestamp(&p, &row->ts)) != NULL)
		return problem;
	if (p.value[FIELD_VOLUME] != NULL &&
		(problem = decode_number(&p, FIELD_VOLUME, &row->volume)) != NULL)
		return problem;
	if (p.value[FIELD_CURRENCY] != NULL)
	{
		if (p.type[FIELD_CURRENCY] != JSON_TOKEN_STRING)
			return pstrdup("currency must be a string");
		row->currency = p.value[FIELD_CURRENCY];
	}
	return NULL;
}
