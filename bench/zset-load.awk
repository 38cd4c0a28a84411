# bench/zset-load.awk — the RESP stream (for redis-cli --pipe) that fills a sorted set, ZADD in
# batches of 1000. By default the set the ZRANGEBYSCORE rows of compare.sh and callgrind.sh read:
# members member:<i> with score i, i = 0..n-1. With -v fmt=FORMAT the members are
# sprintf(FORMAT, i) instead, and with -v range=R the scores are random integers in 0..R-1
# (callgrind.sh's ZADD preload: redis-benchmark's element:<12 digits> members).
# Usage: awk -v n=N -v key=KEY [-v fmt=FORMAT] [-v range=R] -f bench/zset-load.awk
BEGIN {
    batch = 1000
    if (fmt == "") fmt = "member:%d"
    srand(1)
    for (i = 0; i < n; i += batch) {
        m = (n - i < batch) ? n - i : batch
        printf "*%d\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", 2 + 2 * m, length(key), key
        for (j = i; j < i + m; j++) {
            mem = sprintf(fmt, j)
            sc = (range > 0) ? int(rand() * range) : j
            printf "$%d\r\n%d\r\n$%d\r\n%s\r\n", length(sc ""), sc, length(mem), mem
        }
    }
}
