/*-------------------------------------------------------------------------
 *
 * extension/partitions.h
 *	  Monthly partitions of md.prices, created as prices arrive.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MD_PARTITIONS_H
#define MD_PARTITIONS_H

#include "datatype/timestamp.h"

/*
 * Make sure a partition exists for every month (UTC) of the n timestamps.
 * Call inside SPI.
 */
extern void md_partitions_ensure(const TimestampTz *ts, int n);

#endif							/* MD_PARTITIONS_H */
