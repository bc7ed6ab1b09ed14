/*-------------------------------------------------------------------------
 *
 * extension/json_util.c
 *	  Reading provider bodies with PostgreSQL's own JSON code.
 *
 * A body is parsed once, by pg_parse_json with our own semantic actions
 * that build the jsonb value as jsonb_in would. jsonb_in itself would
 * raise on input it cannot store (a number numeric cannot hold, such as
 * 1e999999), and a provider's bad answer must be a malformed answer, not
 * an error that ends the caller's transaction: our actions check each
 * number before numeric_in sees it and, past a bad one, store null in its
 * place and note the problem. Parsing once also halves the lexing.
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

/* numeric_in refuses far beyond this; no price needs more */
#define MAX_NUMBER_EXPONENT 1000

typedef struct BuildState
{
	JsonbParseState *parse;
	JsonbValue *result;
	const char *problem;		/* the first reason to refuse the body */
} BuildState;

/*
 * Why numeric_in could not take this JSON number without raising, or NULL
 * when it can: too long for a price, or an exponent out of numeric's range.
 */
static const char *
number_problem(const char *token, size_t len)
{
	const char *e;

	if (len > MAX_NUMBER_LEN)
		return "body holds a number longer than 64 characters";
	e = memchr(token, 'e', len);
	if (e == NULL)
		e = memchr(token, 'E', len);
	if (e != NULL)
	{
		long		exponent;

		errno = 0;
		exponent = strtol(e + 1, NULL, 10);
		if (errno != 0 || exponent > MAX_NUMBER_EXPONENT || exponent < -MAX_NUMBER_EXPONENT)
			return "body holds a number whose exponent is out of range";
	}
	return NULL;
}

static void
build_push_value(BuildState *state, JsonbValue *v)
{
	if (state->parse == NULL)
	{
		/* a scalar document: jsonb stores it as a one-element raw array */
		JsonbValue	array = {.type = jbvArray};

		array.val.array.rawScalar = true;
		array.val.array.nElems = 1;
		pushJsonbValue(&state->parse, WJB_BEGIN_ARRAY, &array);
		pushJsonbValue(&state->parse, WJB_ELEM, v);
		state->result = pushJsonbValue(&state->parse, WJB_END_ARRAY, NULL);
	}
	else if (state->parse->contVal.type == jbvArray)
		state->result = pushJsonbValue(&state->parse, WJB_ELEM, v);
	else
		state->result = pushJsonbValue(&state->parse, WJB_VALUE, v);
}

static void
build_object_start(void *arg)
{
	BuildState *state = arg;

	state->result = pushJsonbValue(&state->parse, WJB_BEGIN_OBJECT, NULL);
}

static void
build_object_end(void *arg)
{
	BuildState *state = arg;

	state->result = pushJsonbValue(&state->parse, WJB_END_OBJECT, NULL);
}

static void
build_array_start(void *arg)
{
	BuildState *state = arg;

	state->result = pushJsonbValue(&state->parse, WJB_BEGIN_ARRAY, NULL);
}

static void
build_array_end(void *arg)
{
	BuildState *state = arg;

	state->result = pushJsonbValue(&state->parse, WJB_END_ARRAY, NULL);
}

static void
build_field(void *arg, char *fname, bool isnull)
{
	BuildState *state = arg;
	JsonbValue	key = {.type = jbvString};

	key.val.string.len = (int) strlen(fname);
	key.val.string.val = fname;
	state->result = pushJsonbValue(&state->parse, WJB_KEY, &key);
}

static void
build_scalar(void *arg, char *token, JsonTokenType tokentype)
{
	BuildState *state = arg;
	JsonbValue	v = {.type = jbvNull};
	size_t		len = strlen(token);
	const char *problem = NULL;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.len = (int) len;
			v.val.string.val = token;
			break;
		case JSON_TOKEN_NUMBER:
			problem = number_problem(token, len);
			if (problem == NULL)
			{
				v.type = jbvNumeric;
				v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																	CStringGetDatum(token),
																	ObjectIdGetDatum(InvalidOid),
																	Int32GetDatum(-1)));
			}
			else if (state->problem == NULL)
				state->problem = problem;
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (tokentype == JSON_TOKEN_TRUE);
			break;
		default:
			break;				/* JSON_TOKEN_NULL */
	}
	build_push_value(state, &v);
}

JsonbContainer *
md_json_parse(const char *body, int len, char **problem)
{
	JsonLexContext *lex;
	JsonSemAction sem = {0};
	BuildState	state = {0};
	JsonParseErrorType rc;
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
	lex = makeJsonLexContextCstringLen(unconstify(char *, body), len,
									   GetDatabaseEncoding(), true);
	sem.semstate = &state;
	sem.object_start = build_object_start;
	sem.object_end = build_object_end;
	sem.array_start = build_array_start;
	sem.array_end = build_array_end;
	sem.object_field_start = build_field;
	sem.scalar = build_scalar;
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		*problem = psprintf("body is not JSON: %s", json_errdetail(rc, lex));
		return NULL;
	}
	if (state.problem != NULL)
	{
		*problem = pstrdup(state.problem);
		return NULL;
	}
	jb = JsonbValueToJsonb(state.result);
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

int
md_json_array_size(JsonbValue *v)
{
	JsonbContainer *c = md_json_container(v);

	if (c == NULL || !JsonContainerIsArray(c) || JsonContainerIsScalar(c))
		return -1;
	return (int) JsonContainerSize(c);
}

JsonbValue *
md_json_elem(JsonbValue *array, int i)
{
	return getIthJsonbValueFromContainer(md_json_container(array), (uint32) i);
}

int
md_json_object_entries(JsonbValue *v, char ***keys, JsonbValue **values)
{
	JsonbContainer *c = md_json_container(v);
	JsonbIterator *it;
	JsonbValue	jv;
	JsonbIteratorToken tok;
	int			n = 0;

	if (c == NULL || !JsonContainerIsObject(c))
		return -1;
	*keys = palloc(sizeof(char *) * Max(JsonContainerSize(c), 1));
	*values = palloc(sizeof(JsonbValue) * Max(JsonContainerSize(c), 1));
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &jv, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			(*keys)[n] = pnstrdup(jv.val.string.val, jv.val.string.len);
		else if (tok == WJB_VALUE)
			(*values)[n++] = jv;
	}
	return n;
}

bool
md_json_number_or_null(JsonbValue *v, Numeric *out)
{
	*out = NULL;
	if (v == NULL || v->type == jbvNull)
		return true;
	*out = md_json_numeric(v);
	return *out != NULL && !numeric_is_nan(*out) && !numeric_is_inf(*out);
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

	if (s == NULL || strlen(s) == 0 || number_problem(s, strlen(s)) != NULL ||
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
