#ifndef PIER_CCURL_SHIM_H
#define PIER_CCURL_SHIM_H
/* libcurl for PierCurl. curl_easy_setopt and curl_easy_getinfo are variadic, which Swift
 * cannot call, so these typed wrappers stand in for them. */
#include <curl/curl.h>

typedef size_t (*pier_curl_data_cb)(char *data, size_t size, size_t count, void *context);

static inline CURLcode pier_curl_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode pier_curl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode pier_curl_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode pier_curl_setopt_data_cb(CURL *handle, CURLoption option, pier_curl_data_cb value) {
    return curl_easy_setopt(handle, option, value);
}

typedef int (*pier_curl_xferinfo_cb)(void *context, curl_off_t download_total, curl_off_t download_now,
                                     curl_off_t upload_total, curl_off_t upload_now);

static inline CURLcode pier_curl_setopt_xferinfo_cb(CURL *handle, CURLoption option, pier_curl_xferinfo_cb value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode pier_curl_response_code(CURL *handle, long *out) {
    return curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, out);
}
#endif
