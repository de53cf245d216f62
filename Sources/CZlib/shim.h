#ifndef PIER_CZLIB_SHIM_H
#define PIER_CZLIB_SHIM_H
#include <zlib.h>
#endif
