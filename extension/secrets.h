/*-------------------------------------------------------------------------
 *
 * extension/secrets.h
 *	  Provider API keys: from the environment or the secrets file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_SECRETS_H
#define MD_SECRETS_H

/* the provider's API key (palloc'd), or NULL when none is configured */
extern char *md_secret_key(const char *provider);

/*
 * Call each(name, value, arg) for every "name = value" line of the file at
 * path (# comments, blank lines and empty values skipped); refuses a file
 * that group or others may read. setting names the GUC in hints.
 */
extern void md_secrets_file_read(const char *path, const char *setting,
								 void (*each) (const char *name, const char *value,
											   void *arg),
								 void *arg);

/* a copy of text with every occurrence of secret replaced by "***" */
extern char *md_mask_secret(const char *text, const char *secret);

/* the same for len bytes that may hold NULs; the copy's length in *out_len */
extern char *md_mask_secret_bytes(const char *data, size_t len, const char *secret,
								  size_t *out_len);

#endif							/* MD_SECRETS_H */
