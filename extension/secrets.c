/*-------------------------------------------------------------------------
 *
 * extension/secrets.c
 *	  Secrets: provider API keys from the environment or the secrets
 *	  file, and the reader of such "name = value" files (also used for
 *	  marketdata.kafka_config_file).
 *
 * A provider's key is the environment variable MARKETDATA_<NAME>_KEY
 * (NAME upper-cased: MARKETDATA_FINNHUB_KEY, MARKETDATA_ALPHA_VANTAGE_KEY),
 * inherited from the postmaster; else the line "name = key" of the file
 * named by marketdata.secrets_file. The file is refused when group or
 * others may read it. Keys are never stored, logged or put in messages:
 * fetch.c masks them in everything it keeps.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "lib/stringinfo.h"
#include "storage/fd.h"

#include "guc.h"
#include "secrets.h"

static char *
trim(char *s)
{
	char	   *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

void
md_secrets_file_read(const char *path, const char *setting,
					 void (*each) (const char *name, const char *value, void *arg),
					 void *arg)
{
	FILE	   *file;
	struct stat st;
	char		line[1024];

	file = AllocateFile(path, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open secrets file \"%s\": %m", path),
				 errhint("Check %s.", setting)));
	if (fstat(fileno(file), &st) != 0)
	{
		FreeFile(file);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat secrets file \"%s\": %m", path)));
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		FreeFile(file);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("secrets file \"%s\" is accessible by group or others", path),
				 errhint("Run chmod 600 on it.")));
	}
	while (fgets(line, sizeof(line), file) != NULL)
	{
		char	   *eq;
		char	   *name;
		char	   *value;

		name = trim(line);
		if (name[0] == '#' || name[0] == '\0')
			continue;
		eq = strchr(name, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		value = trim(eq + 1);
		if (value[0] != '\0')
			each(trim(name), value, arg);
	}
	/* the line buffer held a secret: do not leave it on the stack */
	explicit_bzero(line, sizeof(line));
	FreeFile(file);
}

typedef struct KeyLookup
{
	const char *provider;
	char	   *key;
} KeyLookup;

static void
match_provider(const char *name, const char *value, void *arg)
{
	KeyLookup  *lookup = arg;

	if (strcmp(name, lookup->provider) == 0)
		lookup->key = pstrdup(value);
}

char *
md_secret_key(const char *provider)
{
	StringInfoData var;
	const char *p;
	const char *value;

	initStringInfo(&var);
	appendStringInfoString(&var, "MARKETDATA_");
	for (p = provider; *p; p++)
		appendStringInfoChar(&var, pg_toupper((unsigned char) *p));
	appendStringInfoString(&var, "_KEY");
	value = getenv(var.data);
	if (value != NULL && value[0] != '\0')
		return pstrdup(value);
	if (md_secrets_file != NULL && md_secrets_file[0] != '\0')
	{
		KeyLookup	lookup = {provider, NULL};

		md_secrets_file_read(md_secrets_file, "marketdata.secrets_file",
							 match_provider, &lookup);
		return lookup.key;
	}
	return NULL;
}

char *
md_mask_secret_bytes(const char *data, size_t len, const char *secret, size_t *out_len)
{
	StringInfoData out;
	size_t		slen = secret != NULL ? strlen(secret) : 0;
	const char *p = data;
	const char *end = data + len;
	const char *hit;

	initStringInfo(&out);
	while (slen > 0 && (hit = memmem(p, end - p, secret, slen)) != NULL)
	{
		appendBinaryStringInfo(&out, p, hit - p);
		appendStringInfoString(&out, "***");
		p = hit + slen;
	}
	appendBinaryStringInfo(&out, p, end - p);
	*out_len = out.len;
	return out.data;
}

char *
md_mask_secret(const char *text, const char *secret)
{
	size_t		len;

	if (text == NULL)
		return NULL;
	return md_mask_secret_bytes(text, strlen(text), secret, &len);
}
