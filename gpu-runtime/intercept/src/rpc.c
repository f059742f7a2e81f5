/* The connection to the kernel-proxy (Unix socket) or a GPU server (TCP): frames, batching, replies.
 * Knows frames, not CUDA semantics. All state is in rgpu_g and guarded by rgpu_g.lock.
 *
 * Requests whose reply kind is `none` are appended to a write buffer and leave with the next request
 * that needs an answer (or when the buffer fills), so launches, H2D copies and frees cost no syscall
 * each. There is no background thread: one of the threads waiting for a reply is the reader (the others
 * sleep on rx_cond) and delivers every frame to its owner — the waiter of that seq, the destination of an
 * earlier async read (cuMemcpyDtoHAsync), or stdout (PRINTF). Waiting does not hold rgpu_g.lock, so other
 * threads keep launching while one synchronises. */
#include "rgpu.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS 5000

struct rgpu_state rgpu_g = { .lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1, .lane_fd = -1 };
static void note_sticky(CUresult rc);
static void lane_close(void);

/* A thread waiting for the reply to `seq`; lives on that thread's stack, listed while it waits. */
struct waiter {
    uint32_t seq;
    int done;
    CUresult rc;
    uint8_t *body;          /* malloc'd reply body, handed to the caller */
    uint32_t body_len;
    void *bulk_dst;
    uint64_t bulk_cap;
    int ordered;            /* a synchronising op: also wait for every async read posted before it */
    struct waiter *next;
};

/* The receive side: rx_lock guards these and rgpu_g.pending; it is never held across I/O. */
static pthread_mutex_t rx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rx_cond = PTHREAD_COND_INITIALIZER;
static int reader_active;
static struct waiter *waiters;
static CUresult deferred_async_error; /* error of an async DtoH reply, returned by the next wait */

void rgpu_rpc_lock(void) { pthread_mutex_lock(&rgpu_g.lock); }
void rgpu_rpc_unlock(void) { pthread_mutex_unlock(&rgpu_g.lock); }

/* May run on the reading thread while another sends: it only flags the loss and shuts the socket down
 * (which wakes any thread blocked on it); the descriptor is closed at exit or fork. */
static void mark_lost(const char *why)
{
    if (!rgpu_g.lost) rgpu_trace("connection lost: %s", why);
    rgpu_g.lost = RGPU_ERR_TRANSPORT;
    if (rgpu_g.fd >= 0) shutdown(rgpu_g.fd, SHUT_RDWR);
    if (rgpu_g.lane_fd >= 0) shutdown(rgpu_g.lane_fd, SHUT_RDWR);
    pthread_mutex_lock(&rx_lock);
    pthread_cond_broadcast(&rx_cond);
    pthread_mutex_unlock(&rx_lock);
}

/* ---- raw I/O ---- */

static int read_interleaved_frame(void);

/* Sends everything in iov on fd (the session connection or the data lane). While the socket is full, frames
 * the server sends meanwhile on the session connection (replies to earlier asynchronous reads with their
 * lane bytes, printf) are consumed: the server stops reading from a client that does not read its replies,
 * so a large async read followed by a large write would otherwise deadlock. */
static int send_iov_on(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        struct msghdr mh;
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* Drain input ourselves unless a waiting thread is already the reader. */
                pthread_mutex_lock(&rx_lock);
                int other = reader_active;
                if (!other) reader_active = 1;
                pthread_mutex_unlock(&rx_lock);
                struct pollfd pfd[2] = { { fd, POLLOUT, 0 }, { rgpu_g.fd, POLLIN, 0 } };
                int np = 1;
                if (!other && fd == rgpu_g.fd) pfd[0].events |= POLLIN;
                else if (!other) np = 2;
                int pr = poll(pfd, (nfds_t)np, other ? 10 : -1);
                int bad = pr < 0 && errno != EINTR;
                /* a hang-up counts as readable: the read then finds the loss instead of this loop spinning */
                int readable = pr > 0 && !other && (pfd[np - 1].revents & (POLLIN | POLLHUP | POLLERR));
                if (!bad && readable && !(pfd[0].revents & POLLOUT)) bad = read_interleaved_frame();
                if (!other) {
                    pthread_mutex_lock(&rx_lock);
                    reader_active = 0;
                    pthread_cond_broadcast(&rx_cond);
                    pthread_mutex_unlock(&rx_lock);
                }
                if (bad) { if (!rgpu_g.lost) mark_lost(strerror(errno)); return -1; }
                continue;
            }
            mark_lost(strerror(errno));
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) { w -= (ssize_t)iov->iov_len; iov++; n--; }
        if (n > 0) { iov->iov_base = (uint8_t *)iov->iov_base + w; iov->iov_len -= (size_t)w; }
    }
    return 0;
}

static int send_iov(struct iovec *iov, int n) { return send_iov_on(rgpu_g.fd, iov, n); }

static int recv_full_on(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = recv(fd, p, len, 0);
        if (r == 0) { mark_lost("server closed the connection"); return -1; }
        if (r < 0) {
            if (errno == EINTR) continue;
            mark_lost(strerror(errno));
            return -1;
        }
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int recv_full(void *buf, size_t len) { return recv_full_on(rgpu_g.fd, buf, len); }

static int discard_on(int fd, uint64_t len)
{
    uint8_t tmp[4096];
    while (len) {
        size_t n = len > sizeof(tmp) ? sizeof(tmp) : (size_t)len;
        if (recv_full_on(fd, tmp, n)) return -1;
        len -= n;
    }
    return 0;
}

static int discard(uint64_t len) { return discard_on(rgpu_g.fd, len); }

/* ---- sending ---- */

CUresult rgpu_rpc_flush_locked(void)
{
    if (rgpu_g.lost) return rgpu_g.lost;
    if (!rgpu_g.wlen) return CUDA_SUCCESS;
    struct iovec iov = { rgpu_g.wbuf, rgpu_g.wlen };
    rgpu_g.wlen = 0;
    return send_iov(&iov, 1) ? rgpu_g.lost : CUDA_SUCCESS;
}

static void fill_header(rgpu_header *h, uint16_t op, uint16_t flags, uint32_t stream, uint32_t body_len,
                        uint64_t bulk_len)
{
    h->length = (uint32_t)(body_len + bulk_len);
    h->op = op;
    h->flags = flags;
    h->seq = ++rgpu_g.seq;
    h->stream = stream;
    h->body_len = body_len;
    h->result = 0;
}

static CUresult post(uint16_t op, uint16_t flags, uint32_t stream, const void *body, uint32_t body_len,
                     const void *bulk, uint64_t bulk_len, uint32_t *seq_out)
{
    if (rgpu_g.lost) return rgpu_g.lost;
    if (rgpu_g.fd < 0) return CUDA_ERROR_NOT_INITIALIZED;
    if ((uint64_t)body_len + bulk_len > RGPU_MAX_FRAME) return CUDA_ERROR_INVALID_VALUE;
    if (!rgpu_g.wbuf) {
        rgpu_g.wbuf = malloc(RGPU_WBUF_CAP);
        if (!rgpu_g.wbuf) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    rgpu_header h;
    fill_header(&h, op, flags, stream, body_len, bulk_len);
    if (seq_out) *seq_out = h.seq;
    size_t small = RGPU_HEADER_SIZE + body_len;
    if (bulk_len > RGPU_BULK_DIRECT || small > RGPU_WBUF_CAP) {
        /* Large payloads leave straight from the caller's memory, behind whatever is batched. */
        struct iovec iov[4];
        int n = 0;
        if (rgpu_g.wlen) { iov[n].iov_base = rgpu_g.wbuf; iov[n++].iov_len = rgpu_g.wlen; }
        iov[n].iov_base = &h; iov[n++].iov_len = RGPU_HEADER_SIZE;
        if (body_len) { iov[n].iov_base = (void *)body; iov[n++].iov_len = body_len; }
        if (bulk_len) { iov[n].iov_base = (void *)bulk; iov[n++].iov_len = (size_t)bulk_len; }
        rgpu_g.wlen = 0;
        return send_iov(iov, n) ? rgpu_g.lost : CUDA_SUCCESS;
    }
    size_t need = small + (size_t)bulk_len;
    if (rgpu_g.wlen + need > RGPU_WBUF_CAP) {
        CUresult rc = rgpu_rpc_flush_locked();
        if (rc) return rc;
    }
    uint8_t *p = rgpu_g.wbuf + rgpu_g.wlen;
    memcpy(p, &h, RGPU_HEADER_SIZE);
    if (body_len) memcpy(p + RGPU_HEADER_SIZE, body, body_len);
    if (bulk_len) memcpy(p + small, bulk, (size_t)bulk_len);
    rgpu_g.wlen += need;
    return CUDA_SUCCESS;
}

CUresult rgpu_rpc_post_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                              const void *bulk, uint64_t bulk_len)
{
    /* Two counters keep these hooks off the hot path unless a capture or a host function is pending. */
    if (rgpu_g.ncaptures) {
        CUresult rc;
        if (rgpu_graph_post_hook_locked(op, stream, body, body_len, bulk, bulk_len, &rc)) return rc;
    }
    if (rgpu_g.ngates) rgpu_hostfn_gate_locked(op, stream);
    return post(op, RGPU_FLAG_NO_REPLY, stream, body, body_len, bulk, bulk_len, NULL);
}

/* ---- receiving ---- */

static int handle_notify(const rgpu_header *h)
{
    uint64_t len = h->length;
    if (h->op == RGPU_OP_PRINTF) {
        if (discard(h->body_len)) return -1;
        len -= h->body_len;
        /* Device printf text goes to the program's stdout, after what the program itself printed. */
        fflush(stdout);
        uint8_t tmp[4096];
        while (len) {
            size_t n = len > sizeof(tmp) ? sizeof(tmp) : (size_t)len;
            if (recv_full(tmp, n)) return -1;
            size_t off = 0;
            while (off < n) {
                ssize_t w = write(1, tmp + off, n - off);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) break;
                off += (size_t)w;
            }
            len -= n;
        }
        return 0;
    }
    if (h->op == RGPU_OP_QUEUED) rgpu_trace("waiting in the server's queue for a device");
    return discard(len);
}

static int read_bulk_2d(int fd, struct rgpu_pending_dtoh *p, uint64_t len)
{
    if (!p->height) {
        uint64_t take = len < p->size ? len : p->size;
        if (recv_full_on(fd, p->dst, (size_t)take)) return -1;
        return discard_on(fd, len - take);
    }
    uint8_t *dst = p->dst;
    for (uint64_t row = 0; row < p->height && len >= p->width; row++) {
        if (recv_full_on(fd, dst + row * p->dpitch, (size_t)p->width)) return -1;
        len -= p->width;
    }
    return discard_on(fd, len);
}

/* A MEMCPY_DTOH(_2D)_LANE reply's body (already read) says how many bytes follow on the lane; an error reply
 * has none. -1: the transport is lost. Both ops' replies have this layout. */
static int64_t lane_bytes_of(const rgpu_header *h, const uint8_t *body)
{
    rgpu_memcpy_dtoh_lane_reply r;
    if (h->result || h->body_len != sizeof(r) || !body) return 0;
    memcpy(&r, body, sizeof(r));
    if (rgpu_g.lane_fd < 0) { mark_lost("lane bytes announced without a data lane"); return -1; }
    return (int64_t)r.lane_bytes;
}

/* Reads a lane reply's body (small) and returns its lane byte count, as lane_bytes_of. */
static int64_t read_lane_reply(const rgpu_header *h)
{
    uint8_t tmp[sizeof(rgpu_memcpy_dtoh_lane_reply)];
    if (h->body_len != sizeof(tmp)) return discard(h->body_len) ? -1 : 0;
    if (recv_full(tmp, sizeof(tmp))) return -1;
    return lane_bytes_of(h, tmp);
}

/* The reply to an earlier async read: straight into its destination. Called by the reader. */
static int handle_pending(const rgpu_header *h)
{
    struct rgpu_pending_dtoh cur;
    int found = 0;
    pthread_mutex_lock(&rx_lock);
    for (size_t i = 0; i < rgpu_g.npending; i++) {
        struct rgpu_pending_dtoh *p = &rgpu_g.pending[i];
        if (p->seq != h->seq) continue;
        cur = *p;
        memmove(p, p + 1, (rgpu_g.npending - i - 1) * sizeof(*p));
        rgpu_g.npending--;
        found = 1;
        if (h->result && !deferred_async_error) deferred_async_error = (CUresult)h->result;
        break;
    }
    pthread_mutex_unlock(&rx_lock);
    int lane = h->op == RGPU_OP_MEMCPY_DTOH_LANE || h->op == RGPU_OP_MEMCPY_DTOH_2D_LANE;
    int64_t lane_bytes = lane ? read_lane_reply(h) : 0;
    if (lane_bytes < 0) return -1;
    if (!found) return discard(h->length - (lane ? h->body_len : 0)) || discard_on(rgpu_g.lane_fd, (uint64_t)lane_bytes); /* nobody waits any more */
    note_sticky((CUresult)h->result);
    if (lane) { if (read_bulk_2d(rgpu_g.lane_fd, &cur, (uint64_t)lane_bytes) || discard(h->length - h->body_len)) return -1; }
    else if (discard(h->body_len) || read_bulk_2d(rgpu_g.fd, &cur, h->length - h->body_len)) return -1;
    /* only now has the data landed: wake synchronising waiters that were held back by this read */
    pthread_mutex_lock(&rx_lock);
    pthread_cond_broadcast(&rx_cond);
    pthread_mutex_unlock(&rx_lock);
    return 0;
}

/* The reply a thread waits for: body and bulk go into its buffers, then it is woken. */
static int handle_waiter(const rgpu_header *h, struct waiter *w)
{
    uint8_t *body = NULL;
    if (h->body_len) {
        body = malloc(h->body_len);
        if (!body) { mark_lost("out of memory"); return -1; }
        if (recv_full(body, h->body_len)) { free(body); return -1; }
    }
    uint64_t bulk = h->length - h->body_len;
    int fd = rgpu_g.fd;
    if (h->op == RGPU_OP_MEMCPY_DTOH_LANE || h->op == RGPU_OP_MEMCPY_DTOH_2D_LANE) {
        int64_t lane_bytes = lane_bytes_of(h, body);
        if (lane_bytes < 0 || discard(bulk)) { free(body); return -1; }
        bulk = (uint64_t)lane_bytes;
        fd = rgpu_g.lane_fd;
    }
    uint64_t take = bulk < w->bulk_cap ? bulk : w->bulk_cap;
    if ((take && recv_full_on(fd, w->bulk_dst, (size_t)take)) || discard_on(fd, bulk - take)) { free(body); return -1; }
    CUresult rc = (CUresult)h->result;
    pthread_mutex_lock(&rx_lock);
    if (!rc && deferred_async_error) rc = deferred_async_error;
    deferred_async_error = CUDA_SUCCESS;
    w->body = body;
    w->body_len = h->body_len;
    w->rc = rc;
    w->done = 1;
    pthread_cond_broadcast(&rx_cond);
    pthread_mutex_unlock(&rx_lock);
    note_sticky(rc);
    return 0;
}

/* Reads one frame and delivers it. Only the thread holding the reader role calls this, without locks. */
static int read_interleaved_frame(void)
{
    rgpu_header h;
    if (recv_full(&h, sizeof(h))) return -1;
    if (h.length > RGPU_MAX_FRAME || h.body_len > h.length || h.body_len > RGPU_MAX_BODY) {
        mark_lost("malformed frame from server");
        return -1;
    }
    if (h.flags & RGPU_FLAG_NOTIFY) return handle_notify(&h);
    pthread_mutex_lock(&rx_lock);
    struct waiter *w = waiters;
    while (w && w->seq != h.seq) w = w->next;
    pthread_mutex_unlock(&rx_lock);
    /* a listed waiter stays listed (and its buffers valid) until it sees done, which only we set */
    return w ? handle_waiter(&h, w) : handle_pending(&h);
}

/* Faults poison the context on a real GPU; remembering them here makes calls answered locally (allocations,
 * launches) fail the same way as those the server answers. */
static void note_sticky(CUresult rc)
{
    switch (rc) {
    case CUDA_ERROR_ILLEGAL_ADDRESS: case CUDA_ERROR_LAUNCH_FAILED: case CUDA_ERROR_ASSERT:
    case CUDA_ERROR_LAUNCH_TIMEOUT: case CUDA_ERROR_MISALIGNED_ADDRESS: case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_HARDWARE_STACK_ERROR: case CUDA_ERROR_INVALID_PC: case CUDA_ERROR_INVALID_ADDRESS_SPACE:
        if (!rgpu_g.sticky) rgpu_trace("sticky device error %d: the session's context is unusable", (int)rc);
        rgpu_g.sticky = rc;
        break;
    default:
        break;
    }
}

/* Called with rx_lock. Replies on different streams may come back in any order (a sync's reply can overtake
 * an async read's), yet once a synchronising call succeeds the data of every read posted before it must have
 * landed, as on a real GPU. So an ordered waiter is finished only when no older read is still pending. */
static int finished(const struct waiter *w)
{
    if (!w->done) return 0;
    if (!w->ordered || w->rc) return 1;
    for (size_t i = 0; i < rgpu_g.npending; i++)
        if ((int32_t)(rgpu_g.pending[i].seq - w->seq) < 0) return 0;
    return 1;
}

/* Waits (without rgpu_g.lock) until w is answered: as the reader if nobody is, else asleep. */
static CUresult wait_reply(struct waiter *w, uint8_t **reply_body, uint32_t *reply_len)
{
    pthread_mutex_lock(&rx_lock);
    while (!finished(w) && !rgpu_g.lost) {
        if (reader_active) {
            pthread_cond_wait(&rx_cond, &rx_lock);
            continue;
        }
        reader_active = 1;
        pthread_mutex_unlock(&rx_lock);
        for (;;) {
            pthread_mutex_lock(&rx_lock);
            int done = finished(w);
            pthread_mutex_unlock(&rx_lock);
            if (done || read_interleaved_frame()) break;
        }
        pthread_mutex_lock(&rx_lock);
        reader_active = 0;
        pthread_cond_broadcast(&rx_cond); /* another waiter takes over reading */
    }
    struct waiter **pp = &waiters;
    while (*pp && *pp != w) pp = &(*pp)->next;
    if (*pp) *pp = w->next;
    int fin = finished(w);
    pthread_mutex_unlock(&rx_lock);
    if (!fin) return rgpu_g.lost ? rgpu_g.lost : RGPU_ERR_TRANSPORT;
    if (reply_body) { *reply_body = w->body; if (reply_len) *reply_len = w->body_len; }
    else free(w->body);
    return w->rc;
}

/* Called with rgpu_g.lock; returns with it held, but releases it while waiting for the reply. */
CUresult rgpu_rpc_call_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                              const void *bulk, uint64_t bulk_len, uint8_t **reply_body,
                              uint32_t *reply_len, void *bulk_dst, uint64_t bulk_cap)
{
    if (reply_body) *reply_body = NULL;
    if (rgpu_g.ngates) rgpu_hostfn_gate_locked(op, stream); /* before the seq is predicted below */
    if (rgpu_g.lost) return rgpu_g.lost;
    /* listed before the request can leave: a concurrent reader may see the reply first */
    struct waiter w = { .seq = rgpu_g.seq + 1, .bulk_dst = bulk_dst, .bulk_cap = bulk_cap,
                        .ordered = op == RGPU_OP_CTX_SYNC || op == RGPU_OP_STREAM_SYNC || op == RGPU_OP_STREAM_QUERY ||
                                   op == RGPU_OP_EVENT_SYNC || op == RGPU_OP_EVENT_QUERY };
    pthread_mutex_lock(&rx_lock);
    w.next = waiters;
    waiters = &w;
    pthread_mutex_unlock(&rx_lock);
    uint32_t seq;
    CUresult rc = post(op, 0, stream, body, body_len, bulk, bulk_len, &seq);
    if (!rc) rc = rgpu_rpc_flush_locked();
    if (rc) {
        pthread_mutex_lock(&rx_lock);
        struct waiter **pp = &waiters;
        while (*pp && *pp != &w) pp = &(*pp)->next;
        if (*pp) *pp = w.next;
        pthread_mutex_unlock(&rx_lock);
        return rc;
    }
    rgpu_rpc_unlock();
    rc = wait_reply(&w, reply_body, reply_len);
    rgpu_rpc_lock();
    return rc;
}

CUresult rgpu_rpc_post_dtoh_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len,
                                   void *dst, uint64_t size, uint64_t width, uint64_t height, uint64_t dpitch)
{
    if (rgpu_g.ngates) rgpu_hostfn_gate_locked(op, stream); /* before the seq is predicted below */
    if (rgpu_g.lost) return rgpu_g.lost;
    pthread_mutex_lock(&rx_lock);
    if (rgpu_g.npending == rgpu_g.cap_pending) {
        size_t cap = rgpu_g.cap_pending ? rgpu_g.cap_pending * 2 : 16;
        void *np = realloc(rgpu_g.pending, cap * sizeof(*rgpu_g.pending));
        if (!np) { pthread_mutex_unlock(&rx_lock); return CUDA_ERROR_OUT_OF_MEMORY; }
        rgpu_g.pending = np;
        rgpu_g.cap_pending = cap;
    }
    /* registered before the request can leave, with the seq post() is about to assign (we hold the lock) */
    struct rgpu_pending_dtoh *p = &rgpu_g.pending[rgpu_g.npending++];
    p->seq = rgpu_g.seq + 1; p->dst = dst; p->size = size;
    p->width = width; p->height = height; p->dpitch = dpitch;
    uint32_t predicted = p->seq;
    pthread_mutex_unlock(&rx_lock);
    uint32_t seq;
    CUresult rc = post(op, 0, stream, body, body_len, NULL, 0, &seq);
    if (rc) {
        pthread_mutex_lock(&rx_lock);
        for (size_t i = 0; i < rgpu_g.npending; i++)
            if (rgpu_g.pending[i].seq == predicted) { rgpu_g.pending[i] = rgpu_g.pending[--rgpu_g.npending]; break; }
        pthread_mutex_unlock(&rx_lock);
    }
    return rc;
}

void rgpu_rpc_defer_error(CUresult rc)
{
    pthread_mutex_lock(&rx_lock);
    if (!deferred_async_error) deferred_async_error = rc;
    pthread_mutex_unlock(&rx_lock);
}

/* ---- connecting ---- */

static int connect_with_timeout(int fd, const struct sockaddr *sa, socklen_t len)
{
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int r = connect(fd, sa, len);
    if (r < 0 && errno == EINPROGRESS) {
        struct pollfd pfd = { fd, POLLOUT, 0 };
        do r = poll(&pfd, 1, CONNECT_TIMEOUT_MS); while (r < 0 && errno == EINTR);
        if (r <= 0) {
            if (r == 0) errno = ETIMEDOUT;
            fcntl(fd, F_SETFL, fl);
            return -1;
        }
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        /* errno still says EINPROGRESS here: report the connection's own error (e.g. ECONNREFUSED). */
        if (err) errno = err;
        r = err ? -1 : 0;
    }
    fcntl(fd, F_SETFL, fl);
    return r;
}

static int dial_tcp(const char *host, const char *port, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) || !ai) {
        snprintf(err, errlen, "cannot resolve %s:%s", host, port);
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect_with_timeout(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) { snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port, strerror(errno)); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* The server named by REMOTE_GPU_SERVER, when that is how we connected: a data lane may go there too. */
static char direct_host[256], direct_port[16];

/* what names the peer in the error ("proxy " or ""). */
static int dial_unix(const char *path, const char *what, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) { snprintf(err, errlen, "socket path %s too long", path); return -1; }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect_with_timeout(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        snprintf(err, errlen, "cannot connect to %s%s: %s", what, path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* An address as the HELLO reply's lane offer or REMOTE_GPU_SERVER gives it: an empty port means that host is
 * a Unix socket path (a pool on this machine, such as the proxy's embedded server). */
static int dial(const char *host, const char *port, char *err, size_t errlen)
{
    return port[0] ? dial_tcp(host, port, err, errlen) : dial_unix(host, "", err, errlen);
}

static int open_socket(char *err, size_t errlen)
{
    direct_host[0] = 0;
    const char *proxy = getenv("REMOTE_GPU_PROXY");
    if (proxy && *proxy) return dial_unix(proxy, "proxy ", err, errlen);
    const char *url = getenv("REMOTE_GPU_SERVER");
    char host[256] = "127.0.0.1", port[16] = "7447";
    if (url && strncmp(url, "unix:", 5) == 0) {
        snprintf(host, sizeof(host), "%s", url + 5);
        port[0] = 0;
    } else if (url && *url) {
        const char *hp = strncmp(url, "tcp://", 6) == 0 ? url + 6 : url;
        const char *colon = strrchr(hp, ':');
        size_t hl = colon ? (size_t)(colon - hp) : strlen(hp);
        if (hl >= sizeof(host)) hl = sizeof(host) - 1;
        memcpy(host, hp, hl);
        host[hl] = 0;
        if (colon) snprintf(port, sizeof(port), "%s", colon + 1);
    }
    int fd = dial(host, port, err, errlen);
    if (fd >= 0) { memcpy(direct_host, host, sizeof(host)); memcpy(direct_port, port, sizeof(port)); }
    return fd;
}

static void read_token(char *tok, size_t len)
{
    tok[0] = 0;
    const char *path = getenv("REMOTE_GPU_TOKEN_FILE");
    if (!path || !*path) return;
    FILE *f = fopen(path, "re");
    if (!f) { rgpu_trace("cannot read token file %s", path); return; }
    size_t n = fread(tok, 1, len - 1, f);
    fclose(f);
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ')) n--;
    tok[n] = 0;
}

static void copy_str(const struct rgpu_mp_value *v, char *dst, size_t cap)
{
    size_t n = v->n < cap - 1 ? v->n : cap - 1;
    memcpy(dst, v->p, n);
    dst[n] = 0;
}

static int parse_hello(const uint8_t *body, uint32_t len)
{
    struct rgpu_mp_reader r = { body, body + len };
    struct rgpu_mp_value top, dev, v, va;
    int64_t x;
    if (rgpu_mp_read(&r, &top) || top.type != RGPU_MP_MAP) return -1;
    if (rgpu_mp_map_get(&top, "session", &v) == 0 && v.type == RGPU_MP_STR) copy_str(&v, rgpu_g.session, sizeof(rgpu_g.session));
    if (rgpu_mp_map_get(&top, "device", &dev) || dev.type != RGPU_MP_MAP) return -1;
    if (rgpu_mp_map_get(&dev, "name", &v) == 0 && v.type == RGPU_MP_STR) copy_str(&v, rgpu_g.name, sizeof(rgpu_g.name));
    if (rgpu_mp_get_int(&dev, "totalMem", &x) == 0) rgpu_g.total_mem = (uint64_t)x;
    if (rgpu_mp_map_get(&dev, "uuid", &v) == 0 && (v.type == RGPU_MP_BIN || v.type == RGPU_MP_STR) && v.n == 16)
        memcpy(rgpu_g.uuid, v.p, 16);
    if (rgpu_mp_get_int(&dev, "ccMajor", &x) == 0) rgpu_g.cc_major = (int)x;
    if (rgpu_mp_get_int(&dev, "ccMinor", &x) == 0) rgpu_g.cc_minor = (int)x;
    rgpu_g.driver_version = 13000;
    if (rgpu_mp_get_int(&dev, "driverVersion", &x) == 0 && x >= 13000) rgpu_g.driver_version = (int)x;
    if (rgpu_mp_get_int(&dev, "pciDomain", &x) == 0) rgpu_g.pci_domain = (int)x;
    if (rgpu_mp_get_int(&dev, "pciBus", &x) == 0) rgpu_g.pci_bus = (int)x;
    if (rgpu_mp_get_int(&dev, "pciDevice", &x) == 0) rgpu_g.pci_device = (int)x;
    if (rgpu_mp_map_get(&dev, "attributes", &v) == 0 && v.type == RGPU_MP_ARRAY) {
        struct rgpu_mp_reader ar = { v.p, v.end };
        for (uint32_t i = 0; i < v.n; i++) {
            struct rgpu_mp_value e;
            if (rgpu_mp_read(&ar, &e)) return -1;
            if (i < RGPU_NATTRS && (e.type == RGPU_MP_INT || e.type == RGPU_MP_BOOL || e.type == RGPU_MP_FLOAT))
                rgpu_g.attrs[i] = (int)e.i;
            else if (e.type == RGPU_MP_ARRAY || e.type == RGPU_MP_MAP) return -1;
        }
    }
    if (rgpu_mp_map_get(&top, "va", &va) || va.type != RGPU_MP_MAP) return -1;
    if (rgpu_mp_get_int(&va, "base", &x)) return -1;
    rgpu_g.va_base = (uint64_t)x;
    if (rgpu_mp_get_int(&va, "size", &x)) return -1;
    rgpu_g.va_size = (uint64_t)x;
    rgpu_g.quota_mem = rgpu_g.va_size;
    if (rgpu_mp_map_get(&top, "quota", &v) == 0 && v.type == RGPU_MP_MAP && rgpu_mp_get_int(&v, "memory", &x) == 0 && x > 0)
        rgpu_g.quota_mem = (uint64_t)x;
    /* A data lane is used where a kernel-proxy named where to dial it, or, talking to the server directly, when
     * its bytes would skip the server process (a CUDA worker takes the socket); otherwise the session
     * connection already is the direct path. */
    struct rgpu_mp_value lane, lh, lt, skip;
    rgpu_g.lane_host[0] = rgpu_g.lane_port[0] = rgpu_g.lane_ticket[0] = 0;
    if (rgpu_mp_map_get(&top, "lane", &lane) == 0 && lane.type == RGPU_MP_MAP &&
        rgpu_mp_map_get(&lane, "ticket", &lt) == 0 && lt.type == RGPU_MP_STR && lt.n < sizeof(rgpu_g.lane_ticket)) {
        if (rgpu_mp_map_get(&lane, "host", &lh) == 0 && lh.type == RGPU_MP_STR && lh.n < sizeof(rgpu_g.lane_host) &&
            rgpu_mp_get_int(&lane, "port", &x) == 0 && x > 0 && x < 65536) {
            copy_str(&lh, rgpu_g.lane_host, sizeof(rgpu_g.lane_host));
            snprintf(rgpu_g.lane_port, sizeof(rgpu_g.lane_port), "%d", (int)x);
        } else if (rgpu_mp_map_get(&lane, "path", &lh) == 0 && lh.type == RGPU_MP_STR && lh.n > 0 && lh.n < sizeof(rgpu_g.lane_host)) {
            copy_str(&lh, rgpu_g.lane_host, sizeof(rgpu_g.lane_host));   /* a Unix socket: lane_port stays empty */
        } else if (direct_host[0] && rgpu_mp_map_get(&lane, "skipsServer", &skip) == 0 && skip.type == RGPU_MP_BOOL && skip.i) {
            memcpy(rgpu_g.lane_host, direct_host, sizeof(direct_host));
            memcpy(rgpu_g.lane_port, direct_port, sizeof(direct_port));
        }
        if (rgpu_g.lane_host[0]) copy_str(&lt, rgpu_g.lane_ticket, sizeof(rgpu_g.lane_ticket));
    }
    struct rgpu_mp_value feat, t;
    rgpu_array_textures = rgpu_mp_map_get(&top, "features", &feat) == 0 && feat.type == RGPU_MP_MAP &&
                          rgpu_mp_map_get(&feat, "textures", &t) == 0 && t.type == RGPU_MP_BOOL && t.i;
    return 0;
}

static CUresult hello_locked(void)
{
    char token[512], argv0[256] = "", host[256] = "";
    read_token(token, sizeof(token));
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (f) { size_t n = fread(argv0, 1, sizeof(argv0) - 1, f); argv0[n] = 0; fclose(f); }
    gethostname(host, sizeof(host) - 1);
    const char *type = getenv("REMOTE_GPU_GPU");

    struct rgpu_mp_writer w;
    rgpu_mp_init(&w);
    rgpu_mp_array(&w, 5);
    rgpu_mp_uint(&w, RGPU_PROTOCOL_VERSION);
    rgpu_mp_str(&w, token);
    rgpu_mp_str(&w, type ? type : "");
    rgpu_mp_str(&w, "session");
    rgpu_mp_map(&w, 4);
    rgpu_mp_str(&w, "pid"); rgpu_mp_uint(&w, (uint64_t)getpid());
    rgpu_mp_str(&w, "host"); rgpu_mp_str(&w, host);
    rgpu_mp_str(&w, "argv0"); rgpu_mp_str(&w, argv0);
    rgpu_mp_str(&w, "runtime"); rgpu_mp_str(&w, "libcuda-intercept/0.1");
    if (w.oom) { rgpu_mp_free(&w); return CUDA_ERROR_OUT_OF_MEMORY; }
    uint8_t *reply = NULL;
    uint32_t rlen = 0;
    CUresult rc = rgpu_rpc_call_locked(RGPU_OP_HELLO, 0, w.buf, (uint32_t)w.len, NULL, 0, &reply, &rlen, NULL, 0);
    rgpu_mp_free(&w);
    if (rc) {
        rgpu_trace("HELLO refused: CUresult %d", (int)rc);
        free(reply);
        return rc == RGPU_ERR_TRANSPORT ? CUDA_ERROR_NO_DEVICE : rc;
    }
    int bad = parse_hello(reply, rlen);
    free(reply);
    if (bad) { rgpu_trace("malformed HELLO reply"); return CUDA_ERROR_NO_DEVICE; }
    rgpu_trace("session %s on %s (%s), va [0x%llx, +0x%llx)", rgpu_g.session, rgpu_g.name,
               type ? type : "default", (unsigned long long)rgpu_g.va_base, (unsigned long long)rgpu_g.va_size);
    return CUDA_SUCCESS;
}

/* Serialises connecting: the HELLO wait releases rgpu_g.lock, and a second cuInit must not dial again. */
static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

CUresult rgpu_rpc_ensure(void)
{
    pthread_mutex_lock(&init_lock);
    rgpu_rpc_lock();
    /* A server that was not reachable may be by now (a notebook started before its proxy): an explicit
     * cuInit tries again; every other call keeps answering the recorded error. */
    if (rgpu_g.init_state == -1 && rgpu_g.init_error == CUDA_ERROR_NO_DEVICE) rgpu_g.init_state = 0;
    if (rgpu_g.init_state == 0) {
        char err[512] = "";
        rgpu_g.lost = CUDA_SUCCESS;
        rgpu_g.pid = getpid();
        rgpu_g.fd = open_socket(err, sizeof(err));
        CUresult rc = CUDA_ERROR_NO_DEVICE;
        if (rgpu_g.fd < 0) rgpu_trace("%s", err);
        else rc = hello_locked();
        if (rc) {
            if (rgpu_g.fd >= 0) close(rgpu_g.fd);
            rgpu_g.fd = -1;
            rgpu_g.init_state = -1;
            rgpu_g.init_error = rc;
        } else {
            rgpu_g.init_state = 1;
            if (!rgpu_g.next_stream) { rgpu_g.next_stream = 2; rgpu_g.next_event = 1; rgpu_g.next_module = 1; }
        }
    }
    CUresult rc = rgpu_g.init_state == 1 ? CUDA_SUCCESS : rgpu_g.init_error;
    rgpu_rpc_unlock();
    pthread_mutex_unlock(&init_lock);
    return rc;
}

CUresult rgpu_rpc_ready(void)
{
    if (rgpu_g.init_state == 1) {
        if (rgpu_g.lost || rgpu_g.sticky) return rgpu_g.lost ? rgpu_g.lost : rgpu_g.sticky;
        return rgpu_g.session_gen ? rgpu_context_stale() : CUDA_SUCCESS;
    }
    return rgpu_g.init_state == 0 ? CUDA_ERROR_NOT_INITIALIZED : rgpu_g.init_error;
}

CUresult rgpu_rpc_renew(void)
{
    pthread_mutex_lock(&init_lock);
    rgpu_rpc_lock();
    CUresult rc = CUDA_SUCCESS;
    if (rgpu_g.init_state != 1 || rgpu_g.lost || !rgpu_g.sticky) goto out; /* nothing to renew, or done already */
    pthread_mutex_lock(&rx_lock);
    int busy = reader_active || waiters || rgpu_g.npending;
    pthread_mutex_unlock(&rx_lock);
    if (busy) {
        /* another thread still waits on the faulted session: pulling the connection from under it is not safe */
        rgpu_trace("a new context after a fault needs the old session idle; other threads still wait on it");
        rc = rgpu_g.sticky;
        goto out;
    }
    rgpu_trace("session %s faulted (CUresult %d): a new context gets a new session", rgpu_g.session, (int)rgpu_g.sticky);
    post(RGPU_OP_GOODBYE, RGPU_FLAG_NO_REPLY, 0, NULL, 0, NULL, 0, NULL);
    rgpu_rpc_flush_locked();
    close(rgpu_g.fd);
    lane_close();
    rgpu_g.stale_error = rgpu_g.sticky;
    rgpu_g.sticky = CUDA_SUCCESS;
    rgpu_g.wlen = 0;
    deferred_async_error = CUDA_SUCCESS;
    char err[512] = "";
    rgpu_g.fd = open_socket(err, sizeof(err));
    if (rgpu_g.fd < 0) { rgpu_trace("%s", err); rc = RGPU_ERR_TRANSPORT; }
    else rc = hello_locked();
    if (rc) {
        /* the process has no session any more: every call fails as after a transport loss */
        rgpu_g.lost = RGPU_ERR_TRANSPORT;
        rc = RGPU_ERR_TRANSPORT;
        goto out;
    }
    rgpu_g.session_gen++;
    rgpu_memory_reset(); /* the old session's memory went with it; handles minted before stay unknown to the new one */
    rgpu_module_renew_locked();
out:
    rgpu_rpc_unlock();
    pthread_mutex_unlock(&init_lock);
    return rc;
}

void rgpu_rpc_goodbye(void)
{
    /* Another thread may still be blocked in a call at exit: then there is no orderly goodbye, but the
     * shutdown wakes that thread (its call fails) and the process still exits instead of hanging here. */
    if (pthread_mutex_trylock(&rgpu_g.lock) != 0) {
        if (rgpu_g.fd >= 0) shutdown(rgpu_g.fd, SHUT_RDWR);
        if (rgpu_g.lane_fd >= 0) shutdown(rgpu_g.lane_fd, SHUT_RDWR);
        return;
    }
    if (rgpu_g.fd >= 0 && !rgpu_g.lost && rgpu_g.pid == getpid()) {
        post(RGPU_OP_GOODBYE, RGPU_FLAG_NO_REPLY, 0, NULL, 0, NULL, 0, NULL);
        rgpu_rpc_flush_locked();
        shutdown(rgpu_g.fd, SHUT_WR);
    }
    pthread_mutex_lock(&rx_lock);
    int reading = reader_active || waiters;
    pthread_mutex_unlock(&rx_lock);
    if (reading) { /* wakes the waiting thread; it fails */
        if (rgpu_g.fd >= 0) shutdown(rgpu_g.fd, SHUT_RDWR);
        if (rgpu_g.lane_fd >= 0) shutdown(rgpu_g.lane_fd, SHUT_RDWR);
    } else {
        if (rgpu_g.fd >= 0) { close(rgpu_g.fd); rgpu_g.fd = -1; }
        lane_close();
    }
    rgpu_g.lost = RGPU_ERR_TRANSPORT;
    rgpu_rpc_unlock();
}

/* The child of a fork must not talk on the parent's connection: drop it and start clean. */
void rgpu_rpc_after_fork_child(void)
{
    pthread_mutex_init(&rgpu_g.lock, NULL);
    pthread_mutex_init(&rx_lock, NULL);
    pthread_cond_init(&rx_cond, NULL);
    pthread_mutex_init(&init_lock, NULL);
    reader_active = 0;
    waiters = NULL; /* they belonged to the parent's other threads */
    if (rgpu_g.fd >= 0) close(rgpu_g.fd);
    rgpu_g.fd = -1;
    lane_close();
    rgpu_g.init_state = 0;
    rgpu_g.lost = CUDA_SUCCESS;
    rgpu_g.sticky = CUDA_SUCCESS;
    rgpu_g.wlen = 0;
    rgpu_g.npending = 0;
    rgpu_g.next_stream = 2; rgpu_g.next_event = 1; rgpu_g.next_module = 1;
    deferred_async_error = CUDA_SUCCESS;
    /* the parent's contexts and modules are not the child's: they answer as belonging to another session */
    rgpu_g.session_gen++;
    rgpu_g.stale_error = CUDA_ERROR_INVALID_CONTEXT;
}

/* ---- the data lane ---- */

static void lane_close(void)
{
    if (rgpu_g.lane_fd >= 0) close(rgpu_g.lane_fd);
    rgpu_g.lane_fd = -1;
    rgpu_g.lane_state = 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* recv of exactly len bytes, giving up after ms without progress (a server that never answers). */
static int recv_within(int fd, void *buf, size_t len, int ms)
{
    uint8_t *p = buf;
    while (len) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        int pr = poll(&pfd, 1, ms);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) return -1;
        ssize_t r = recv(fd, p, len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Dials the server named in the HELLO reply and attaches the connection to our session with its ticket. */
static int lane_attach(void)
{
    char err[512] = "";
    int fd = dial(rgpu_g.lane_host, rgpu_g.lane_port, err, sizeof(err));
    if (fd < 0) { rgpu_trace("data lane: %s", err); return -1; }
    struct rgpu_mp_writer w;
    rgpu_mp_init(&w);
    rgpu_mp_array(&w, 3);
    rgpu_mp_uint(&w, RGPU_PROTOCOL_VERSION);
    rgpu_mp_str(&w, rgpu_g.session);
    rgpu_mp_str(&w, rgpu_g.lane_ticket);
    rgpu_header h, r;
    memset(&h, 0, sizeof(h));
    h.length = h.body_len = (uint32_t)w.len;
    h.op = RGPU_OP_LANE_ATTACH;
    h.seq = 1;
    int ok = !w.oom && send_all(fd, &h, sizeof(h)) == 0 && send_all(fd, w.buf, w.len) == 0 &&
             recv_within(fd, &r, sizeof(r), CONNECT_TIMEOUT_MS) == 0;
    rgpu_mp_free(&w);
    if (ok && (r.op != RGPU_OP_LANE_ATTACH || !(r.flags & RGPU_FLAG_REPLY) || r.result || r.length)) {
        rgpu_trace("data lane: the server refused it (CUresult %d)", (int)r.result);
        ok = 0;
    } else if (!ok) rgpu_trace("data lane: no answer to LANE_ATTACH");
    if (!ok) { close(fd); return -1; }
    return fd;
}

/* REMOTE_GPU_LANE_MIN (bytes, both directions) overrides the thresholds, for measuring where the lane pays. */
static uint64_t lane_min(int to_device)
{
    static uint64_t v = UINT64_MAX;
    if (v == UINT64_MAX) {
        const char *e = getenv("REMOTE_GPU_LANE_MIN");
        v = e && *e ? strtoull(e, NULL, 10) : 0;
    }
    return v ? v : to_device ? RGPU_LANE_MIN_HTOD : RGPU_LANE_MIN_DTOH;
}

int rgpu_rpc_use_lane_locked(uint64_t len, int to_device)
{
    if (len < lane_min(to_device) || rgpu_g.lane_state < 0 || rgpu_g.lost) return 0;
    if (rgpu_g.lane_state == 0) {
        /* Tried once per session: without a lane, copies take the session connection as before. */
        rgpu_g.lane_state = -1;
        const char *off = getenv("REMOTE_GPU_LANE");
        if (!rgpu_g.lane_host[0] || (off && strcmp(off, "0") == 0)) return 0;
        int fd = lane_attach();
        if (fd < 0) return 0;
        rgpu_g.lane_fd = fd;
        rgpu_g.lane_state = 1;
        if (rgpu_g.lane_port[0]) rgpu_trace("data lane attached to %s:%s", rgpu_g.lane_host, rgpu_g.lane_port);
        else rgpu_trace("data lane attached to unix:%s", rgpu_g.lane_host);
    }
    return 1;
}

CUresult rgpu_rpc_post_lane_locked(uint16_t op, uint32_t stream, const void *body, uint32_t body_len, const void *src,
                                   uint64_t len)
{
    if (rgpu_g.ngates) rgpu_hostfn_gate_locked(op, stream);
    CUresult rc = post(op, RGPU_FLAG_NO_REPLY, stream, body, body_len, NULL, 0, NULL);
    /* The request leaves first: the server takes lane bytes only for a request it has seen. */
    if (!rc) rc = rgpu_rpc_flush_locked();
    if (rc) return rc;
    struct iovec iov = { (void *)src, (size_t)len };
    return send_iov_on(rgpu_g.lane_fd, &iov, 1) ? rgpu_g.lost : CUDA_SUCCESS;
}
