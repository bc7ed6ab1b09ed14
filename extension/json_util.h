/*-------------------------------------------------------------------------
 *
 * extension/json_util.h
 *	  Reading provider bodies with PostgreSQL's own JSON code.
 *
 * A body is parsed once into jsonb with pg_parse_json (no ereport: a bad
 * body, even one holding a number numeric cannot store, is a malformed
 * answer, not our error); its containers are walked with the jsonb API.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_JSON_UTIL_H
#define MD_JSON_UTIL_H

#include "datatype/timestamp.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* the Unix epoch as a TimestampTz */
#define UNIX_EPOCH_TIMESTAMPTZ \
	((TimestampTz) (UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)

/*
 * Parse body as JSON. Returns its root container, or NULL with *problem
 * set to a short reason (palloc'd) when the body is not JSON we accept.
 */
extern JsonbContainer *md_json_parse(const char *body, int len, char **problem);

/*
 * Walk from a container along a NULL-terminated path of object keys and
 * array positions ("[0]"). NULL when any step is missing or of the wrong
 * kind. A JSON null at the end comes back as a jbvNull value.
 */
extern JsonbValue *md_json_get(JsonbContainer *root,...) __attribute__((sentinel));

/* the container of an object or array value, NULL for a scalar */
extern JsonbContainer *md_json_container(JsonbValue *v);

/* true for a present object with no keys or an empty array */
extern bool md_json_empty(JsonbValue *v);

/* the length of an array value, -1 when v is no array */
extern int	md_json_array_size(JsonbValue *v);

/* element i of an array value (0 <= i < its size) */
extern JsonbValue *md_json_elem(JsonbValue *array, int i);

/*
 * The keys (C strings) and values of an object value, in jsonb's key
 * order; -1 when v is no object.
 */
extern int	md_json_object_entries(JsonbValue *v, char ***keys, JsonbValue **values);

/*
 * A number, or JSON null (or absent) as NULL in *out: false only for a
 * value of another kind (an unparsable number).
 */
extern bool md_json_number_or_null(JsonbValue *v, Numeric *out);

/* a JSON number as numeric; NULL when v is absent or not a number */
extern Numeric md_json_numeric(JsonbValue *v);

/* a JSON string as a C string; NULL when v is absent or not a string */
extern char *md_json_string(JsonbValue *v);

/*
 * A number given as a string ("112.1300", Alpha Vantage): numeric, or NULL
 * when v is not a string holding a JSON-style number.
 */
extern Numeric md_json_string_numeric(JsonbValue *v);

/*
 * An epoch time as a number in units_per_second (1 seconds, 1000 ms,
 * 1000000000 ns). False when v is not such a number in a sane range.
 */
extern bool md_json_epoch(JsonbValue *v, int64 units_per_second, TimestampTz *out);

/* numeric compare helpers */
extern bool md_numeric_is_zero(Numeric n);
extern bool md_numeric_positive(Numeric n);

#endif							/* MD_JSON_UTIL_H */
