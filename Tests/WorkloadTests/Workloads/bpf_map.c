/* BPF maps made with bpf(2): a hash map (O_NONBLOCK, a dup without FD_CLOEXEC, read-only
 * and write-only descriptions of the same map), an mmapable array (not mapped), a frozen
 * hash, a preallocation-free hash left empty, per-CPU array and hash, an LRU hash, a map
 * only a write-only description holds.
 * After go: every map's info (type, sizes, max_entries, flags, name), every key and value,
 * the frozen state, the fd flags, that the descriptions still name one map, and that
 * updates and deletes still work.
 * Arg "criu": only what CRIU 4.2 carries (hash and array maps, one description each). */
#include "bpf_map.h"

static int fdinfo_frozen(int fd)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = f < 0 ? -1 : read(f, buf, sizeof buf - 1);
    if (f >= 0) close(f);
    if (n <= 0) return -1;
    buf[n] = 0;
    char *p = strstr(buf, "frozen:");
    return p ? atoi(p + 7) : -1;
}

struct value { uint64_t a; uint32_t b; uint32_t c; };
static struct value hash_value(uint32_t k) { return (struct value){ k * 0x9E3779B97F4A7C15ULL, k ^ 0xabcd, k + 7 }; }

static void expect_info(int fd, const char *name, int type, int key, int value, int max, int flags)
{
    struct bpf_map_info i = map_info(fd);
    if (i.type != (uint32_t)type || i.key_size != (uint32_t)key || i.value_size != (uint32_t)value
        || i.max_entries != (uint32_t)max || i.map_flags != (uint32_t)flags || strcmp(i.name, name) != 0)
        wl_fail("map fd %d is %s type %u key %u value %u max %u flags %#x, want %s type %d key %d value %d max %d flags %#x",
                fd, i.name, i.type, i.key_size, i.value_size, i.max_entries, i.map_flags, name, type, key, value, max, flags);
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int criu = argc > 2 && strcmp(argv[2], "criu") == 0;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_CONF);

    int hash = map_create(BPF_MAP_TYPE_HASH, "wl_hash", 4, sizeof(struct value), 64, 0);
    for (uint32_t k = 100; k < 120; k++) { struct value v = hash_value(k); map_update(hash, &k, &v, BPF_NOEXIST); }
    fcntl(hash, F_SETFL, O_NONBLOCK);
    int hash_dup = dup(hash);
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_id = map_info(hash).id; a.open_flags = BPF_F_RDONLY;
    int hash_ro = criu ? dup(hash) : (int)bpf(BPF_MAP_GET_FD_BY_ID, &a);
    a.open_flags = BPF_F_WRONLY;
    int hash_wo = criu ? dup(hash) : (int)bpf(BPF_MAP_GET_FD_BY_ID, &a);
    if (hash_ro < 0 || hash_wo < 0) { perror("BPF_MAP_GET_FD_BY_ID"); return 2; }

    int array = map_create(BPF_MAP_TYPE_ARRAY, "wl_array", 4, 8, 32, BPF_F_MMAPABLE);
    for (uint32_t k = 0; k < 32; k++) { uint64_t v = 0x1000000000ULL * k + 3; map_update(array, &k, &v, BPF_ANY); }

    int frozen = map_create(BPF_MAP_TYPE_HASH, "wl.frozen", 8, 4, 16, BPF_F_RDONLY_PROG);
    for (uint64_t k = 1; k <= 5; k++) { uint32_t v = (uint32_t)(k * k); map_update(frozen, &k, &v, BPF_ANY); }
    memset(&a, 0, sizeof a);
    a.map_fd = frozen;
    if (bpf(BPF_MAP_FREEZE, &a) != 0) { perror("BPF_MAP_FREEZE"); return 2; }

    int empty = map_create(BPF_MAP_TYPE_HASH, "wl_empty", 4, 4, 1024, BPF_F_NO_PREALLOC);

    int pcpu = -1, pchash = -1, lru = -1, wonly = -1;
    uint64_t cells[64];   /* per-CPU values: one 8-byte slot per possible CPU */
    if (!criu) {
        pcpu = map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "wl_pcpu", 4, 4, 8, 0);
        for (uint32_t k = 0; k < 8; k++) {
            for (int c = 0; c < ncpu; c++) cells[c] = 1000 * k + c;
            map_update(pcpu, &k, cells, BPF_ANY);
        }
        pchash = map_create(BPF_MAP_TYPE_PERCPU_HASH, "wl_pchash", 4, 8, 16, 0);
        for (uint32_t k = 7; k < 10; k++) {
            for (int c = 0; c < ncpu; c++) cells[c] = ((uint64_t)k << 32) | (uint32_t)c;
            map_update(pchash, &k, cells, BPF_ANY);
        }
        lru = map_create(BPF_MAP_TYPE_LRU_HASH, "wl_lru", 4, 4, 256, 0);
        for (uint32_t k = 0; k < 10; k++) { uint32_t v = ~k; map_update(lru, &k, &v, BPF_ANY); }
        /* A map only a write-only description holds: its entries cannot be read through it. */
        int full = map_create(BPF_MAP_TYPE_HASH, "wl_wonly", 4, 4, 8, 0);
        for (uint32_t k = 1; k <= 3; k++) { uint32_t v = k * 11; map_update(full, &k, &v, BPF_ANY); }
        memset(&a, 0, sizeof a);
        a.map_id = map_info(full).id; a.open_flags = BPF_F_WRONLY;
        wonly = (int)bpf(BPF_MAP_GET_FD_BY_ID, &a);
        if (wonly < 0) { perror("BPF_MAP_GET_FD_BY_ID write-only"); return 2; }
        close(full);
    }

    wl_ready();
    wl_wait_go();

    expect_info(hash, "wl_hash", BPF_MAP_TYPE_HASH, 4, sizeof(struct value), 64, 0);
    expect_info(array, "wl_array", BPF_MAP_TYPE_ARRAY, 4, 8, 32, BPF_F_MMAPABLE);
    expect_info(frozen, "wl.frozen", BPF_MAP_TYPE_HASH, 8, 4, 16, BPF_F_RDONLY_PROG);
    expect_info(empty, "wl_empty", BPF_MAP_TYPE_HASH, 4, 4, 1024, BPF_F_NO_PREALLOC);
    if (!criu) {
        expect_info(pcpu, "wl_pcpu", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 8, 0);
        expect_info(pchash, "wl_pchash", BPF_MAP_TYPE_PERCPU_HASH, 4, 8, 16, 0);
        expect_info(lru, "wl_lru", BPF_MAP_TYPE_LRU_HASH, 4, 4, 256, 0);
    }
    if (map_info(hash).id != map_info(hash_ro).id || map_info(hash).id != map_info(hash_wo).id)
        wl_fail("the read-only or write-only description names another map than the hash");

    if (fcntl(hash, F_GETFL) != (O_RDWR | O_NONBLOCK)) wl_fail("hash fd flags %#o, want O_RDWR|O_NONBLOCK", fcntl(hash, F_GETFL));
    if (!(fcntl(hash, F_GETFD) & FD_CLOEXEC) || (fcntl(hash_dup, F_GETFD) & FD_CLOEXEC)) wl_fail("FD_CLOEXEC of the hash or its dup changed");
    if (!criu && (fcntl(hash_ro, F_GETFL) & O_ACCMODE) != O_RDONLY) wl_fail("read-only description has flags %#o", fcntl(hash_ro, F_GETFL));
    if (!criu && (fcntl(hash_wo, F_GETFL) & O_ACCMODE) != O_WRONLY) wl_fail("write-only description has flags %#o", fcntl(hash_wo, F_GETFL));
    if ((fcntl(array, F_GETFL) & (O_ACCMODE | O_NONBLOCK)) != O_RDWR) wl_fail("array fd flags %#o", fcntl(array, F_GETFL));

    if (map_count(hash, 4) != 20) wl_fail("hash has %d entries, want 20", map_count(hash, 4));
    for (uint32_t k = 100; k < 120; k++) {
        struct value v, want = hash_value(k);
        if (map_lookup(hash_ro, &k, &v) != 0 || memcmp(&v, &want, sizeof v) != 0) { wl_fail("hash key %u wrong or missing", k); break; }
    }
    for (uint32_t k = 0; k < 32; k++) {
        uint64_t v = 0;
        if (map_lookup(array, &k, &v) != 0 || v != 0x1000000000ULL * k + 3) { wl_fail("array[%u] = %#llx", k, (unsigned long long)v); break; }
    }
    if (map_count(frozen, 8) != 5) wl_fail("frozen hash has %d entries, want 5", map_count(frozen, 8));
    for (uint64_t k = 1; k <= 5; k++) {
        uint32_t v = 0;
        if (map_lookup(frozen, &k, &v) != 0 || v != k * k) { wl_fail("frozen key %llu = %u", (unsigned long long)k, v); break; }
    }
    if (fdinfo_frozen(frozen) != 1) wl_fail("frozen map shows frozen: %d", fdinfo_frozen(frozen));
    uint64_t fk = 9; uint32_t fv = 1;
    if (map_update(frozen, &fk, &fv, BPF_ANY) == 0 || errno != EPERM) wl_fail("update of the frozen map was not refused with EPERM");
    if (fdinfo_frozen(hash) != 0) wl_fail("hash map became frozen");
    if (map_count(empty, 4) != 0) wl_fail("empty map has %d entries", map_count(empty, 4));
    for (uint32_t k = 0; !criu && k < 8; k++) {
        memset(cells, 0, sizeof cells);
        if (map_lookup(pcpu, &k, cells) != 0) { wl_fail("percpu array[%u] missing", k); break; }
        for (int c = 0; c < ncpu; c++) if (cells[c] != 1000 * k + c) { wl_fail("percpu array[%u] cpu %d = %llu", k, c, (unsigned long long)cells[c]); break; }
    }
    if (!criu && map_count(pchash, 4) != 3) wl_fail("percpu hash has %d entries, want 3", map_count(pchash, 4));
    for (uint32_t k = 7; !criu && k < 10; k++) {
        if (map_lookup(pchash, &k, cells) != 0) { wl_fail("percpu hash key %u missing", k); break; }
        for (int c = 0; c < ncpu; c++) if (cells[c] != (((uint64_t)k << 32) | (uint32_t)c)) { wl_fail("percpu hash key %u cpu %d wrong", k, c); break; }
    }
    if (!criu) {
        memset(&a, 0, sizeof a);
        a.map_id = map_info(wonly).id; a.open_flags = BPF_F_RDONLY;
        int reader = (int)bpf(BPF_MAP_GET_FD_BY_ID, &a);
        if ((fcntl(wonly, F_GETFL) & O_ACCMODE) != O_WRONLY) wl_fail("write-only map fd has flags %#o", fcntl(wonly, F_GETFL));
        if (reader < 0 || map_count(reader, 4) != 3) wl_fail("write-only map has %d entries, want 3", reader < 0 ? -1 : map_count(reader, 4));
        for (uint32_t k = 1; reader >= 0 && k <= 3; k++) {
            uint32_t v = 0;
            if (map_lookup(reader, &k, &v) != 0 || v != k * 11) { wl_fail("write-only map key %u = %u", k, v); break; }
        }
    }
    if (!criu && map_count(lru, 4) != 10) wl_fail("LRU hash has %d entries, want 10", map_count(lru, 4));
    for (uint32_t k = 0; !criu && k < 10; k++) {
        uint32_t v = 0;
        if (map_lookup(lru, &k, &v) != 0 || v != ~k) { wl_fail("LRU key %u = %#x", k, v); break; }
    }

    /* Still maps: a new key through the dup shows through the read-only description. */
    uint32_t nk = 7; struct value nv = hash_value(7), got;
    if (map_update(hash_dup, &nk, &nv, BPF_NOEXIST) != 0) wl_fail("insert into the hash after restore: %s", strerror(errno));
    if (map_lookup(hash_ro, &nk, &got) != 0 || memcmp(&got, &nv, sizeof got) != 0) wl_fail("new key not seen through the read-only description");
    if (!criu && (map_update(hash_ro, &nk, &nv, BPF_ANY) == 0 || errno != EPERM)) wl_fail("update through the read-only description was allowed");
    struct value wv = hash_value(8);
    uint32_t wk = 8;
    if (!criu && (map_lookup(hash_wo, &nk, &got) == 0 || errno != EPERM)) wl_fail("lookup through the write-only description was allowed");
    if (map_update(hash_wo, &wk, &wv, BPF_NOEXIST) != 0 || map_lookup(hash, &wk, &got) != 0 || memcmp(&got, &wv, sizeof got) != 0)
        wl_fail("insert through the write-only description not seen in the hash: %s", strerror(errno));
    uint32_t dk = 100;
    if (map_delete(hash, &dk) != 0 || map_count(hash, 4) != 21) wl_fail("delete from the hash after restore failed");
    uint32_t ek = 5, ev = 55;
    if (map_update(empty, &ek, &ev, BPF_NOEXIST) != 0) wl_fail("insert into the empty map: %s", strerror(errno));
    uint32_t ak = 40; uint64_t av = 1;
    if (map_update(array, &ak, &av, BPF_ANY) == 0 || errno != E2BIG) wl_fail("array accepted index 40 of 32");
    wl_finish();
}
