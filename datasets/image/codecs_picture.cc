// PNG (libpng's simplified API) and JPEG (libjpeg) decoding of codecs.h.
// jpeglib.h uses size_t and FILE without including their headers.
#include <cstddef>
#include <cstdio>
// clang-format: keep the order above.
#include <jpeglib.h>
// jerror.h after jpeglib.h: it needs its types.
#include <jerror.h>
#include <png.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <string>

#include "datasets/image/codecs.h"

namespace ebm::data {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DatasetError(where + ": " + what);
}

// Refuses, before anything is allocated for it, an image whose header claims more than a data
// set's image can be: a side over 16384 pixels, or more pixels than 1024 per byte of the file
// (deflate expands at most 1032:1; baseline JPEG needs some bits per 8x8 block) once past 1 Mpx.
void check_claimed_size(const std::string& path, const char* format, uint64_t width,
                        uint64_t height, size_t file_bytes) {
  constexpr uint64_t kMaxSide = 16384;
  const uint64_t pixels = width * height;
  if (width == 0 || height == 0 || width > kMaxSide || height > kMaxSide ||
      pixels > std::max<uint64_t>(uint64_t{1} << 20, uint64_t{1024} * file_bytes)) {
    fail(path, std::string("implausible ") + format + " size " + std::to_string(width) + "x" +
                   std::to_string(height) + " for a file of " + std::to_string(file_bytes) +
                   " bytes");
  }
}

void check_channels(const std::string& path, int channels) {
  if (channels != 1 && channels != 3) fail(path, "channels must be 1 or 3");
}

struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

}  // namespace

void decode_png(const std::string& bytes, const std::string& path, int channels,
                const PixelSink& sink) {
  check_channels(path, channels);
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size())) {
    fail(path, std::string("not a readable PNG (") + img.message + ")");
  }
  img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  uint8_t* out = nullptr;
  try {
    check_claimed_size(path, "PNG", img.width, img.height, bytes.size());
    out = sink({img.height, img.width, channels});
  } catch (...) {
    png_image_free(&img);
    throw;
  }
  if (!png_image_finish_read(&img, nullptr, out, 0, nullptr)) {
    const std::string msg = img.message;
    png_image_free(&img);
    fail(path, "corrupt PNG (" + msg + ")");
  }
}

void decode_jpeg(const std::string& bytes, const std::string& path, int channels,
                 const PixelSink& sink) {
  check_channels(path, channels);
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = [](j_common_ptr c) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    (*c->err->format_message)(c, e->message);
    longjmp(e->jump, 1);
  };
  // Warnings that mean lost or damaged data (a truncated file is padded with grey, a bad Huffman
  // code resynchronised) are errors here; "extraneous bytes before a marker" and trace messages
  // stay quiet, as many cameras write such files.
  err.mgr.emit_message = [](j_common_ptr c, int level) {
    if (level != -1 || c->err->msg_code == JWRN_EXTRANEOUS_DATA) return;
    (*c->err->error_exit)(c);
  };
  // Nothing with a destructor lives between setjmp and a longjmp to it: the sink's buffer is the
  // caller's, and the size check throws only before decompression starts.
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    fail(path, std::string("corrupt JPEG (") + err.message + ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  uint8_t* out = nullptr;
  try {
    check_claimed_size(path, "JPEG", cinfo.image_width, cinfo.image_height, bytes.size());
    cinfo.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    out = sink({cinfo.output_height, cinfo.output_width, channels});
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  const size_t row_bytes = static_cast<size_t>(cinfo.output_width) * channels;
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + cinfo.output_scanline * row_bytes;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
}

}  // namespace ebm::data
