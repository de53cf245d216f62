#ifndef PIER_CDEFLATE_SHIM_H
#define PIER_CDEFLATE_SHIM_H
/* libdeflate for PierWire's DEFLATE and CRC-32; why, in Sources/PierWire/Deflate.swift. */
#include <libdeflate.h>
#endif
