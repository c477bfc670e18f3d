/* BPF maps made with bpf(2): a hash map (O_NONBLOCK, a dup without FD_CLOEXEC, read-only
 * and write-only descriptions of the same map), an mmapable array (not mapped), a frozen
 * hash, a preallocation-free hash left empty, per-CPU array and hash, an LRU hash.
 * After go: every map's info (type, sizes, max_entries, flags, name), every key and value,
 * the frozen state, the fd flags, that the descriptions still name one map, and that
 * updates and deletes still work.
 * Arg "criu": only what CRIU 4.2 carries (hash and array maps, one description each).
 * Args "ringbuf", "mmapped", "prog", "btf", "used", "inner", "outside", "pinned": a ring
 * buffer, a mapped mmapable array, a program fd, a map with BTF types, a map used by a
 * program attached to a socket,
 * inside an array of maps, held by a process outside the tree, pinned in a BPF
 * filesystem (mounted on DIR/bpffs): dumps of them are refused. */
#include "workload.h"
#include <linux/bpf.h>
#include <linux/btf.h>
#include <sys/mount.h>
#include <sys/socket.h>

static long bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }

static int map_create(int type, const char *name, int key, int value, int max, int flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = type; a.key_size = key; a.value_size = value; a.max_entries = max; a.map_flags = flags;
    strncpy(a.map_name, name, sizeof a.map_name - 1);
    int fd = (int)bpf(BPF_MAP_CREATE, &a);
    if (fd < 0) { fprintf(stderr, "create %s: %s\n", name, strerror(errno)); exit(2); }
    return fd;
}

static int map_update(int fd, const void *key, const void *value, int flags)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key; a.value = (uintptr_t)value; a.flags = flags;
    return (int)bpf(BPF_MAP_UPDATE_ELEM, &a);
}

static int map_lookup(int fd, const void *key, void *value)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key; a.value = (uintptr_t)value;
    return (int)bpf(BPF_MAP_LOOKUP_ELEM, &a);
}

static int map_delete(int fd, const void *key)
{
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_fd = fd; a.key = (uintptr_t)key;
    return (int)bpf(BPF_MAP_DELETE_ELEM, &a);
}

/* Entries in the map, by GET_NEXT_KEY. */
static int map_count(int fd, int key_size)
{
    char key[64], next[64];
    union bpf_attr a;
    int n = 0;
    for (;;) {
        memset(&a, 0, sizeof a);
        a.map_fd = fd; a.key = n ? (uintptr_t)key : 0; a.next_key = (uintptr_t)next;
        if (bpf(BPF_MAP_GET_NEXT_KEY, &a) != 0) return errno == ENOENT ? n : -1;
        memcpy(key, next, key_size);
        n++;
    }
}

static struct bpf_map_info map_info(int fd)
{
    struct bpf_map_info info;
    union bpf_attr a;
    memset(&info, 0, sizeof info);
    memset(&a, 0, sizeof a);
    a.info.bpf_fd = fd; a.info.info_len = sizeof info; a.info.info = (uintptr_t)&info;
    if (bpf(BPF_OBJ_GET_INFO_BY_FD, &a) != 0) wl_fail("BPF_OBJ_GET_INFO_BY_FD fd %d: %s", fd, strerror(errno));
    return info;
}

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

/* A socket filter that returns 0, loading `map` (if >= 0) so the program uses it. */
static int prog_load(int map)
{
    struct bpf_insn insns[] = {
        { .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1, .src_reg = BPF_PSEUDO_MAP_FD, .imm = map },
        { 0 },
        { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
        { .code = BPF_JMP | BPF_EXIT },
    };
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    a.insns = (uintptr_t)(map >= 0 ? insns : insns + 2); a.insn_cnt = map >= 0 ? 4 : 2;
    a.license = (uintptr_t)"GPL";
    int fd = (int)bpf(BPF_PROG_LOAD, &a);
    if (fd < 0) { perror("BPF_PROG_LOAD"); exit(2); }
    return fd;
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

static int refused_variant(const char *what)
{
    int map = map_create(BPF_MAP_TYPE_HASH, "wl_kept", 4, 4, 8, 0);
    uint32_t k = 1, v = 42, got = 0;
    map_update(map, &k, &v, BPF_ANY);
    if (strcmp(what, "ringbuf") == 0) map_create(BPF_MAP_TYPE_RINGBUF, "wl_ring", 0, 0, 4096, 0);
    else if (strcmp(what, "mmapped") == 0) {
        int arr = map_create(BPF_MAP_TYPE_ARRAY, "wl_mapped", 4, 8, 512, BPF_F_MMAPABLE);
        if (mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, arr, 0) == MAP_FAILED) { perror("mmap map"); exit(2); }
    } else if (strcmp(what, "prog") == 0) prog_load(-1);
    else if (strcmp(what, "btf") == 0) {
        /* BTF with one type, a 32-bit signed int, as the map's key and value type. */
        struct { struct btf_header h; struct btf_type t; uint32_t enc; char str[5]; } __attribute__((packed)) blob = {
            { BTF_MAGIC, BTF_VERSION, 0, sizeof(struct btf_header), 0, sizeof(struct btf_type) + 4, sizeof(struct btf_type) + 4, 5 },
            { .name_off = 1, .info = BTF_KIND_INT << 24, .size = 4 }, (BTF_INT_SIGNED << 24) | 32, "\0int" };
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.btf = (uintptr_t)&blob; a.btf_size = sizeof blob;
        int btf = (int)bpf(BPF_BTF_LOAD, &a);
        if (btf < 0) { perror("BPF_BTF_LOAD"); exit(2); }
        memset(&a, 0, sizeof a);
        a.map_type = BPF_MAP_TYPE_HASH; a.key_size = 4; a.value_size = 4; a.max_entries = 4;
        a.btf_fd = btf; a.btf_key_type_id = 1; a.btf_value_type_id = 1;
        strcpy(a.map_name, "wl_btf");
        if (bpf(BPF_MAP_CREATE, &a) < 0) { perror("map with BTF"); exit(2); }
        close(btf);
    }
    else if (strcmp(what, "used") == 0) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) { perror("socketpair"); exit(2); }
        int prog = prog_load(map);
        if (setsockopt(sv[0], SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof prog) != 0) { perror("SO_ATTACH_BPF"); exit(2); }
        close(prog);
    } else if (strcmp(what, "inner") == 0) {
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.map_type = BPF_MAP_TYPE_ARRAY_OF_MAPS; a.key_size = 4; a.value_size = 4; a.max_entries = 1; a.inner_map_fd = map;
        int outer = (int)bpf(BPF_MAP_CREATE, &a);
        uint32_t zero = 0, inner = (uint32_t)map;
        if (outer < 0 || map_update(outer, &zero, &inner, BPF_ANY) != 0) { perror("array of maps"); exit(2); }
    } else if (strcmp(what, "outside") == 0) {
        /* A grandchild, reparented away from the tree, keeps the map until go. */
        pid_t child = fork();
        if (child == 0) {
            if (fork() == 0) { wl_write_file("holder", "up\n"); wl_wait_go(); _exit(0); }
            _exit(0);
        }
        waitpid(child, NULL, 0);
        struct stat st;
        while (stat("holder", &st) != 0) wl_sleep_ms(5);
    } else if (strcmp(what, "pinned") == 0) {
        mkdir("bpffs", 0700);
        if (mount("bpf", "bpffs", "bpf", 0, NULL) != 0) { perror("mount bpf"); exit(2); }
        union bpf_attr a;
        memset(&a, 0, sizeof a);
        a.pathname = (uintptr_t)"bpffs/wl_kept"; a.bpf_fd = map;
        if (bpf(BPF_OBJ_PIN, &a) != 0) { perror("BPF_OBJ_PIN"); umount2("bpffs", MNT_DETACH); exit(2); }
    }
    wl_ready();
    wl_wait_go();
    if (strcmp(what, "pinned") == 0) umount2("bpffs", MNT_DETACH);
    if (map_lookup(map, &k, &got) != 0 || got != 42) wl_fail("map wl_kept lost its entry after a refused dump");
    wl_finish();
    return 0;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    int criu = argc > 2 && strcmp(argv[2], "criu") == 0;
    if (argc > 2 && !criu) return refused_variant(argv[2]);
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
