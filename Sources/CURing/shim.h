// liburing from Debian (liburing-dev). Only what Swift cannot import directly lives here:
// the CQE iteration macro is replaced by peek/advance in Swift; nothing else is needed yet.
#pragma once
#include <liburing.h>
