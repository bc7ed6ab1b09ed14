/*-------------------------------------------------------------------------
 *
 * extension/version.c
 *	  The library's version against the SQL version installed in a database.
 *
 * A newer marketdata.so loaded by a server whose database still has an older
 * install SQL (the package was upgraded, ALTER EXTENSION ... UPDATE not yet
 * run) would run new C code against old tables. Instead, its SQL entry
 * points refuse with a message that names the fix, and the workers wait
 * for it (worker/worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "version.h"

char *
md_installed_version(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("marketdata"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

void
md_require_installed_version(void)
{
	/* versions only go forward: once equal, equal for this backend's life */
	static bool checked = false;
	char	   *installed;

	/* an install or upgrade script runs with the version it is becoming */
	if (checked || creating_extension)
		return;
	installed = md_installed_version();
	if (installed == NULL || strcmp(installed, MD_LIBRARY_VERSION) == 0)
	{
		checked = installed != NULL;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("marketdata library is version %s but the extension in this database is version %s",
					MD_LIBRARY_VERSION, installed),
			 errhint("Run ALTER EXTENSION marketdata UPDATE in this database.")));
}
