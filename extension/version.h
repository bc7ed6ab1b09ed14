/*-------------------------------------------------------------------------
 *
 * extension/version.h
 *	  The library's version against the SQL version installed in a database.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_VERSION_H
#define MD_VERSION_H

/* the version this library was built for (marketdata.control) */
#define MD_LIBRARY_VERSION MD_EXTVERSION

/*
 * The installed SQL version of the extension in this database, palloc'd;
 * NULL when it is not installed. Needs a transaction.
 */
extern char *md_installed_version(void);

/*
 * ERROR unless the installed SQL version is the library's: the C functions
 * of this library read and write the tables of their own version only.
 * Called by the SQL entry points that touch tables; cheap once it passed.
 */
extern void md_require_installed_version(void);

#endif							/* MD_VERSION_H */
