# bench/zset-load.awk — the RESP stream (for redis-cli --pipe) that fills the sorted set the
# ZRANGEBYSCORE rows of compare.sh and callgrind.sh read: members member:<i> with score i,
# i = 0..n-1, ZADD in batches of 1000. Usage: awk -v n=N -v key=KEY -f bench/zset-load.awk
BEGIN {
    batch = 1000
    for (i = 0; i < n; i += batch) {
        m = (n - i < batch) ? n - i : batch
        printf "*%d\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n", 2 + 2 * m, length(key), key
        for (j = i; j < i + m; j++) {
            mem = "member:" j
            printf "$%d\r\n%d\r\n$%d\r\n%s\r\n", length(j ""), j, length(mem), mem
        }
    }
}
