/*-------------------------------------------------------------------------
 *
 * extension/json_util.c
 *	  Reading provider bodies with PostgreSQL's own JSON code.
 *
 * jsonb_in raises on input it cannot store; so a body goes through
 * pg_parse_json first, with a scalar action that notes numbers numeric
 * could not hold. Only a body that passes is handed to jsonb_in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdarg.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"

#include "json_util.h"

/* no real price, volume or time needs longer numbers than this */
#define MAX_NUMBER_LEN 64

/* the Unix epoch as a TimestampTz */
#define UNIX_EPOCH_TIMESTAMPTZ \
	((TimestampTz) (UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)

typedef struct ScanState
{
	bool		bad_number;
} ScanState;

static void
scan_scalar(void *state, char *token, JsonTokenType tokentype)
{
	if (tokentype == JSON_TOKEN_NUMBER && strlen(token) > MAX_NUMBER_LEN)
		((ScanState *) state)->bad_number = true;
}

JsonbContainer *
md_json_parse(const char *body, int len, char **problem)
{
	JsonLexContext *lex;
	JsonSemAction sem = {0};
	ScanState	state = {false};
	JsonParseErrorType rc;
	char	   *copy;
	Jsonb	   *jb;

	if (len == 0)
	{
		*problem = pstrdup("empty body");
		return NULL;
	}
	if (memchr(body, '\0', len) != NULL || !pg_verifymbstr(body, len, true))
	{
		*problem = pstrdup("body is not valid text");
		return NULL;
	}
	copy = pnstrdup(body, len);
	lex = makeJsonLexContextCstringLen(copy, len, GetDatabaseEncoding(), true);
	sem.semstate = &state;
	sem.scalar = scan_scalar;
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		*problem = psprintf("body is not JSON: %s", json_errdetail(rc, lex));
		return NULL;
	}
	if (state.bad_number)
	{
		*problem = pstrdup("body holds a number longer than 64 characters");
		return NULL;
	}
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(copy)));
	return &jb->root;
}

JsonbValue *
md_json_get(JsonbContainer *root,...)
{
	va_list		ap;
	const char *step;
	JsonbContainer *c = root;
	JsonbValue *v = NULL;

	va_start(ap, root);
	while ((step = va_arg(ap, const char *)) != NULL)
	{
		if (c == NULL)
		{
			v = NULL;
			break;
		}
		if (step[0] == '[')
		{
			int			i = atoi(step + 1);

			v = JsonContainerIsArray(c) && !JsonContainerIsScalar(c)
				? getIthJsonbValueFromContainer(c, (uint32) i) : NULL;
		}
		else
			v = JsonContainerIsObject(c)
				? getKeyJsonValueFromContainer(c, step, strlen(step), NULL) : NULL;
		if (v == NULL)
			break;
		c = md_json_container(v);
	}
	va_end(ap);
	return v;
}

JsonbContainer *
md_json_container(JsonbValue *v)
{
	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return v->val.binary.data;
}

bool
md_json_empty(JsonbValue *v)
{
	JsonbContainer *c = md_json_container(v);

	return c != NULL && JsonContainerSize(c) == 0;
}

Numeric
md_json_numeric(JsonbValue *v)
{
	if (v == NULL || v->type != jbvNumeric)
		return NULL;
	return v->val.numeric;
}

char *
md_json_string(JsonbValue *v)
{
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

Numeric
md_json_string_numeric(JsonbValue *v)
{
	char	   *s = md_json_string(v);

	if (s == NULL || strlen(s) == 0 || strlen(s) > MAX_NUMBER_LEN ||
		!IsValidJsonNumber(s, strlen(s)))
		return NULL;
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

bool
md_json_epoch(JsonbValue *v, int64 units_per_second, TimestampTz *out)
{
	Numeric		n = md_json_numeric(v);
	char	   *text;
	char	   *end;
	long long	units;
	int64		usecs;

	if (n == NULL || numeric_is_nan(n) || numeric_is_inf(n))
		return false;
	/* integral epoch values only: exact, no float rounding of ns times */
	text = numeric_normalize(n);
	errno = 0;
	units = strtoll(text, &end, 10);
	if (*end != '\0' || errno != 0 || units <= 0)
		return false;
	if (units_per_second >= USECS_PER_SEC)
		usecs = units / (units_per_second / USECS_PER_SEC);
	else
	{
		/* beyond year 5000 is nonsense for a price */
		if (units > (long long) 95617584000LL * units_per_second)
			return false;
		usecs = units * (USECS_PER_SEC / units_per_second);
	}
	*out = UNIX_EPOCH_TIMESTAMPTZ + usecs;
	return true;
}

bool
md_numeric_is_zero(Numeric n)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											 NumericGetDatum(int64_to_numeric(0)))) == 0;
}

bool
md_numeric_positive(Numeric n)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
		return false;
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
											 NumericGetDatum(int64_to_numeric(0)))) > 0;
}
