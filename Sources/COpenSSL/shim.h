// OpenSSL 3 (Debian libssl-dev) for the TLS transport (Sources/TLS) and for certificate checks
// in the control plane. Header-only: static inline wrappers for what OpenSSL offers only as
// macros (Swift cannot call function-like macros).
#pragma once
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

static inline long ing_ssl_ctx_set_min_proto(SSL_CTX *c, int v) { return SSL_CTX_set_min_proto_version(c, v); }
static inline long ing_ssl_ctx_set_max_proto(SSL_CTX *c, int v) { return SSL_CTX_set_max_proto_version(c, v); }
static inline long ing_ssl_ctx_set_mode(SSL_CTX *c, long m) { return SSL_CTX_set_mode(c, m); }
static inline long ing_ssl_ctx_set_session_cache_mode(SSL_CTX *c, long m) { return SSL_CTX_set_session_cache_mode(c, m); }
static inline long ing_ssl_ctx_set_num_tickets(SSL_CTX *c, size_t n) { return SSL_CTX_set_num_tickets(c, n); }
static inline long ing_ssl_set_tlsext_host_name(SSL *s, const char *name) { return SSL_set_tlsext_host_name(s, name); }
static inline long ing_bio_pending(BIO *b) { return (long)BIO_ctrl_pending(b); }
static inline long ing_bio_set_mem_eof_return(BIO *b, int v) { return BIO_set_mem_eof_return(b, v); }
static inline long ing_ssl_ctx_set1_groups_list(SSL_CTX *c, const char *l) { return SSL_CTX_set1_groups_list(c, l); }
static inline long ing_ssl_get_extms_support(SSL *s) { return SSL_get_extms_support(s); }
static inline long ing_ssl_session_reused(SSL *s) { return SSL_session_reused(s); }
static inline int ing_ssl_is_init_finished(const SSL *s) { return SSL_is_init_finished(s); }
static inline STACK_OF(X509) *ing_ssl_ctx_get0_chain(SSL_CTX *c) { STACK_OF(X509) *sk = NULL; SSL_CTX_get0_chain_certs(c, &sk); return sk; }
static inline int ing_sk_x509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *ing_sk_x509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline void ing_sk_x509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }
static inline int ing_sk_general_name_num(const GENERAL_NAMES *g) { return sk_GENERAL_NAME_num(g); }
static inline const GENERAL_NAME *ing_sk_general_name_value(const GENERAL_NAMES *g, int i) { return sk_GENERAL_NAME_value(g, i); }
static inline void ing_general_names_free(GENERAL_NAMES *g) { GENERAL_NAMES_free(g); }
static inline uint64_t ing_ssl_server_options(void) {
    return SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE;
}
static inline long ing_ssl_ctx_add1_chain_cert(SSL_CTX *c, X509 *x) { return SSL_CTX_add1_chain_cert(c, x); }

// ---------------------------------------------------------------------------------------------
// Session tickets shared by every worker (issue 8): the supervisor writes the keys into shared
// memory (`ing_ticket_keys`, a seqlock: `sequence` is odd while it writes); each worker's
// SSL_CTXs encrypt tickets with key[0] and accept key[0] and key[1] (the previous one, renewing
// the ticket), so a client resumes on whichever worker accepts it, across reloads too.
#include <openssl/core_names.h>
#include <string.h>

struct ing_ticket_key { unsigned char name[16]; unsigned char aes[32]; unsigned char hmac[32]; };
struct ing_ticket_keys { uint64_t sequence; struct ing_ticket_key key[2]; };

static inline int ing_ticket_keys_read(const struct ing_ticket_keys *shared, struct ing_ticket_key out[2]) {
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t s1 = __atomic_load_n(&shared->sequence, __ATOMIC_ACQUIRE);
        if (s1 & 1) continue;
        memcpy(out, (const void *)shared->key, sizeof(struct ing_ticket_key) * 2);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&shared->sequence, __ATOMIC_RELAXED) == s1) return s1 != 0;
    }
    return 0;
}

static inline void ing_ticket_keys_write(struct ing_ticket_keys *shared, const struct ing_ticket_key keys[2]) {
    uint64_t s = __atomic_load_n(&shared->sequence, __ATOMIC_RELAXED);
    __atomic_store_n(&shared->sequence, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy((void *)shared->key, keys, sizeof(struct ing_ticket_key) * 2);
    __atomic_store_n(&shared->sequence, s + 2, __ATOMIC_RELEASE);
}

static inline int ing_ticket_mac_init(EVP_MAC_CTX *hctx, unsigned char *hmac) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, hmac, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"sha256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

static inline int ing_ticket_key_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                                    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc) {
    const struct ing_ticket_keys *shared = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    struct ing_ticket_key keys[2];
    if (!shared || !ing_ticket_keys_read(shared, keys)) return 0;   /* no keys yet: no ticket, full handshakes */
    if (enc) {
        memcpy(key_name, keys[0].name, 16);
        if (RAND_bytes(iv, 16) != 1) return -1;
        if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, keys[0].aes, iv) != 1) return -1;
        if (ing_ticket_mac_init(hctx, keys[0].hmac) != 1) return -1;
        return 1;
    }
    for (int k = 0; k < 2; k++) {
        if (memcmp(key_name, keys[k].name, 16) != 0) continue;
        if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, keys[k].aes, iv) != 1) return -1;
        if (ing_ticket_mac_init(hctx, keys[k].hmac) != 1) return -1;
        return k == 0 ? 1 : 2;   // 2: decrypted with the previous key, issue a new ticket
    }
    return 0;   // unknown key: a full handshake
}

/// Makes `ctx` issue and accept tickets with the shared keys at `shared`.
static inline int ing_ssl_ctx_use_shared_ticket_keys(SSL_CTX *ctx, void *shared) {
    SSL_CTX_set_app_data(ctx, shared);
    return (int)SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ing_ticket_key_cb);
}
static inline long ing_bio_get_mem_data(BIO *b, char **p) { return BIO_get_mem_data(b, p); }
static inline int ing_ssl_ctx_verify_mode(const SSL_CTX *c) { return SSL_CTX_get_verify_mode(c); }
static inline unsigned long ing_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }
/// Bytes a memory BIO has allocated (its BUF_MEM's max), whatever it holds now.
static inline size_t ing_bio_mem_capacity(BIO *b) { BUF_MEM *m = NULL; BIO_get_mem_ptr(b, &m); return m ? m->max : 0; }

// ---------------------------------------------------------------------------------------------
// Upstream TLS session resumption (TLS to upstreams): each client SSL_CTX (one per cluster per
// route table, per worker) keeps the newest resumable session per key, the key being a hash of
// the endpoint and SNI a connection was made for, which the worker puts in the SSL's app data
// before the handshake. TLS 1.3 sessions arrive after the handshake (NewSessionTicket), so they
// are taken from OpenSSL's new-session callback, for both versions. The table hangs off the
// context (its app data, for the callback; an ex_data slot, so that it is freed with the
// context, which outlives the route table while connections made from it are open).
#define ING_SESSION_SLOTS 16
struct ing_session_cache { uint64_t keys[ING_SESSION_SLOTS]; SSL_SESSION *sessions[ING_SESSION_SLOTS]; unsigned next; };

static inline void ing_session_cache_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    struct ing_session_cache *c = ptr;
    if (!c) return;
    for (int k = 0; k < ING_SESSION_SLOTS; k++) if (c->sessions[k]) SSL_SESSION_free(c->sessions[k]);
    OPENSSL_free(c);
}

/// The ex_data index for session caches (asked for once per process).
static inline int ing_session_cache_index(void) {
    return SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ing_session_cache_free);
}

static inline int ing_session_new_cb(SSL *s, SSL_SESSION *sess) {
    struct ing_session_cache *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    uint64_t key = (uint64_t)(uintptr_t)SSL_get_app_data(s);
    if (!c || key == 0 || !SSL_SESSION_is_resumable(sess)) return 0;
    int slot = -1;
    for (int k = 0; k < ING_SESSION_SLOTS; k++) if (c->keys[k] == key) { slot = k; break; }
    if (slot < 0) { slot = (int)c->next; c->next = (c->next + 1) % ING_SESSION_SLOTS; }
    if (c->sessions[slot]) SSL_SESSION_free(c->sessions[slot]);
    c->keys[slot] = key;
    c->sessions[slot] = sess;
    return 1;   /* the reference is ours */
}

/// Gives client context `ctx` a session cache (ex_data `index`). 1 on success.
static inline int ing_client_session_cache(SSL_CTX *ctx, int index) {
    struct ing_session_cache *c = OPENSSL_zalloc(sizeof *c);
    if (!c) return 0;
    if (SSL_CTX_set_ex_data(ctx, index, c) != 1) { OPENSSL_free(c); return 0; }
    SSL_CTX_set_app_data(ctx, c);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, ing_session_new_cb);
    return 1;
}

/// Before a client handshake: notes `key` (nonzero) on `s` and offers the session kept for it,
/// if any. 1 when a session was offered (the server may still decline it).
static inline int ing_client_session_offer(SSL *s, uint64_t key) {
    SSL_set_app_data(s, (void *)(uintptr_t)key);
    struct ing_session_cache *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(s));
    if (!c) return 0;
    for (int k = 0; k < ING_SESSION_SLOTS; k++) {
        if (c->keys[k] == key && c->sessions[k]) return SSL_set_session(s, c->sessions[k]) == 1;
    }
    return 0;
}
