/*-------------------------------------------------------------------------
 *
 * extension/partitions.h
 *	  Monthly partitions of md.prices and md.bars, created as prices arrive.
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

/*
 * Make sure md.bars has a partition for every month that a bar of a price
 * at one of the n timestamps can start in: a bar starts at most span
 * microseconds before its prices. Call inside SPI.
 */
extern void md_bar_partitions_ensure(const TimestampTz *ts, int n, int64 span);

#endif							/* MD_PARTITIONS_H */
