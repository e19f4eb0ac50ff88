// COREIO_EXPORT: marks the C++ API that libcoreio.so exports (the library is
// built with hidden visibility so that only the documented API is visible).
#pragma once

#if defined(_WIN32)
#define COREIO_EXPORT
#else
#define COREIO_EXPORT __attribute__((visibility("default")))
#endif
