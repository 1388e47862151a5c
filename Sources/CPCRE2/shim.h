// PCRE2 from Debian (libpcre2-dev), 8-bit code units. The pcre2_* names are macros over the
// *_8 functions; Swift calls the *_8 functions directly.
#pragma once
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
