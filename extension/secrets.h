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

/* a copy of text with every occurrence of secret replaced by "***" */
extern char *md_mask_secret(const char *text, const char *secret);

#endif							/* MD_SECRETS_H */
