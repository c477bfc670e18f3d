/* BPF objects whose dumps are refused, each beside a hash map "wl_kept" with one entry
 * that must still be there after go (the refused dump left the task alone). Arg: "ringbuf"
 * (a ring buffer), "mmapped" (a mapped mmapable array), "prog" (a program fd), "btf" (a map
 * with BTF types), "used" (wl_kept used by a program attached to a socket), "inner"
 * (wl_kept inside an array of maps), "outside" (wl_kept also held by a process outside the
 * tree), "pinned" (wl_kept pinned in a BPF filesystem mounted on DIR/bpffs). */
#include "bpf_map.h"
#include <linux/btf.h>
#include <sys/mount.h>
#include <sys/socket.h>

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

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    if (argc < 3) { fprintf(stderr, "usage: %s DIR VARIANT\n", argv[0]); return 2; }
    const char *what = argv[2];
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
}
