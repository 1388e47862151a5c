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
static inline long ing_ssl_ctx_set_tlsext_ticket_key_evp_cb(SSL_CTX *c,
    int (*cb)(SSL *, unsigned char *, unsigned char *, EVP_CIPHER_CTX *, EVP_MAC_CTX *, int)) {
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(c, cb);
}
static inline long ing_ssl_session_reused(SSL *s) { return SSL_session_reused(s); }
static inline int ing_ssl_is_init_finished(const SSL *s) { return SSL_is_init_finished(s); }
static inline STACK_OF(X509) *ing_ssl_ctx_get0_chain(SSL_CTX *c) { STACK_OF(X509) *sk = NULL; SSL_CTX_get0_chain_certs(c, &sk); return sk; }
static inline int ing_sk_x509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *ing_sk_x509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline void ing_sk_x509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }
static inline int ing_sk_general_name_num(const GENERAL_NAMES *g) { return sk_GENERAL_NAME_num(g); }
static inline const GENERAL_NAME *ing_sk_general_name_value(const GENERAL_NAMES *g, int i) { return sk_GENERAL_NAME_value(g, i); }
static inline void ing_general_names_free(GENERAL_NAMES *g) { GENERAL_NAMES_free(g); }
