//! Parquet encoding of one Arrow batch into one Parquet file, fast.
//!
//! Owns: the bytes of an observations file — dictionary string columns are written page by page
//! straight from their Arrow keys (used values sorted into the Parquet dictionary, indices as
//! RLE/bit-packed runs, statistics and page index from the smallest and largest index), and so
//! are dates and timestamps of few distinct values (a partition's period days, a run's
//! timestamps: one RLE run instead of a plain page of repeated values for zstd to squeeze);
//! every other column goes through parquet's own Arrow column writer; the `ARROW:schema` footer
//! entry.
//! Must not: choose the Parquet settings (`writer_properties` does), know paths, staging or
//! partitions (the rest of `warehouse` does), or sort rows (harmonise does; sorted rows only make
//! runs longer and statistics prune better).
//!
//! Why not `ArrowWriter`: it hashes every string value into a fresh dictionary even when the
//! column already is an Arrow dictionary, and compares every value for min/max. With a few
//! hundred distinct values per 64k rows that was ~40% of writing the warehouse; here the work per
//! row is one key lookup, and hashing is replaced by sorting the few used dictionary values.

use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray, RecordBatch};
use arrow_schema::{DataType, Field, SchemaRef};
use parquet::arrow::ArrowSchemaConverter;
use parquet::arrow::add_encoded_arrow_schema_to_metadata;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{BoundaryOrder, Compression, Encoding, EncodingMask, PageType, Type};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::ChunkReader;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, ColumnPath};

/// Errors of [`write_batch`]. The caller knows the file; these name the column and row group.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the batch has {found} columns but the schema declares {expected}")]
    ColumnCount { expected: usize, found: usize },
    #[error(
        "column `{column}` is {found} but the schema declares {expected}; only a \
         Dictionary(Int32, Utf8) column may stand in for a declared Utf8"
    )]
    ColumnType {
        column: String,
        expected: DataType,
        found: DataType,
    },
    #[error("column `{column}` has {nulls} nulls but the schema declares it non-nullable")]
    NullInRequired { column: String, nulls: usize },
    #[error("cannot turn the Arrow schema into a Parquet schema")]
    Schema {
        #[source]
        source: ParquetError,
    },
    #[error("cannot write column `{column}` of row group {row_group}")]
    Column {
        column: String,
        row_group: usize,
        #[source]
        source: ParquetError,
    },
    #[error("cannot zstd-compress a page of column `{column}` of row group {row_group}")]
    Compress {
        column: String,
        row_group: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the Parquet file structure (header, row group or footer)")]
    File {
        #[source]
        source: ParquetError,
    },
}

/// Writes `batch` as one Parquet file into `writer` and hands `writer` back.
///
/// `schema` is the file's Arrow schema, stored as `ARROW:schema` metadata so readers see the
/// declared types. A column of `batch` has the declared type, or is `Dictionary(Int32, Utf8)`
/// where `schema` declares `Utf8` (readers get plain strings; the file is dictionary-encoded
/// either way). Dictionary string columns take the fast path (see the module docs); every other
/// column (Float64, Int64, Date32, Timestamp, plain Utf8, …) goes through parquet's Arrow column
/// writer. Float64 and Int64 columns are written without a dictionary whatever `properties` say:
/// measured values are nearly all distinct, so the dictionary costs a hash per value and is then
/// abandoned. Otherwise `properties` rule: compression, page row and size limits, rows per row
/// group, statistics level, offset index, created-by and key-value metadata. Rows are not
/// reordered; sorted input gives long runs and statistics that prune. An empty batch gives a
/// file with no row groups.
///
/// Errors: the batch does not fit `schema` ([`EncodeError::ColumnCount`],
/// [`EncodeError::ColumnType`], [`EncodeError::NullInRequired`]), or parquet or `writer` failed.
pub fn write_batch<W: Write + Send>(
    writer: W,
    schema: &SchemaRef,
    batch: &RecordBatch,
    properties: &WriterProperties,
) -> Result<W, EncodeError> {
    check_batch(schema, batch)?;
    let properties_in = properties;
    let properties = Arc::new(file_properties(schema, properties));
    let parquet_schema = ArrowSchemaConverter::new()
        .with_coerce_types(properties.coerce_types())
        .convert(schema)
        .map_err(|source| EncodeError::Schema { source })?;
    let file_error = |source| EncodeError::File { source };
    let mut file = SerializedFileWriter::new(
        writer,
        parquet_schema.root_schema_ptr(),
        Arc::clone(&properties),
    )
    .map_err(file_error)?;
    let factory = ArrowRowGroupWriterFactory::new(&file, Arc::clone(schema));
    let mut compressors = Compressors::default();

    let rows_per_group = properties
        .max_row_group_row_count()
        .unwrap_or(usize::MAX)
        .max(1);
    let mut start = 0;
    let mut row_group = 0;
    while start < batch.num_rows() {
        let length = rows_per_group.min(batch.num_rows() - start);
        let rows = batch.slice(start, length);
        let mut group = file.next_row_group().map_err(file_error)?;
        let mut writers = factory
            .create_column_writers(row_group)
            .map_err(file_error)?
            .into_iter();
        let mut leaf = 0;
        for (field, column) in schema.fields().iter().zip(rows.columns()) {
            let column_error = |source| EncodeError::Column {
                column: field.name().clone(),
                row_group,
                source,
            };
            if let Some((runs, dictionary)) = fast_path(
                field,
                column,
                properties_in,
                &properties,
                leaf,
                &parquet_schema,
            ) {
                // This leaf's generic writer is created with the others and never used.
                writers.next();
                let descr = parquet_schema.column(leaf);
                let mut chunk = DictionaryChunk {
                    descr: &descr,
                    properties: &properties,
                    compressors: &mut compressors,
                    column: field.name(),
                    row_group,
                };
                let (bytes, close) = chunk.encode(&runs, &dictionary)?;
                group
                    .append_column(&chunk_reader(bytes), close)
                    .map_err(column_error)?;
                leaf += 1;
                continue;
            }
            // Only reached for a dictionary column when the fast path is off for it (another
            // codec, a bloom filter, dictionary disabled): the generic writer wants the
            // declared type.
            let column = if column.data_type() == field.data_type() {
                Arc::clone(column)
            } else {
                arrow_cast::cast(column, field.data_type())
                    .map_err(|source| column_error(source.into()))?
            };
            for leaf_column in compute_leaves(field, &column).map_err(column_error)? {
                let mut writer = writers
                    .next()
                    .expect("the factory makes one writer per Parquet leaf of the schema");
                writer.write(&leaf_column).map_err(column_error)?;
                let chunk = writer.close().map_err(column_error)?;
                chunk
                    .append_to_row_group(&mut group)
                    .map_err(column_error)?;
                leaf += 1;
            }
        }
        group.close().map_err(file_error)?;
        start += length;
        row_group += 1;
    }
    file.into_inner().map_err(file_error)
}

/// The caller's properties plus what this encoder decides per file: no dictionary for columns
/// other than strings (parquet's writer would hash every number, date and timestamp to build
/// one, which costs more than zstd saves on these sorted pages), and the Arrow schema in the
/// footer.
///
/// Encodings stay PLAIN, RLE and RLE_DICTIONARY on purpose: DELTA_BINARY_PACKED dates and
/// BYTE_STREAM_SPLIT values write faster, but Power BI's Parquet connector (an old parquet-cpp)
/// refuses them with "Unknown encoding type", and Power BI is one of the warehouse's readers.
fn file_properties(schema: &SchemaRef, properties: &WriterProperties) -> WriterProperties {
    let mut builder = properties.clone().into_builder();
    for field in schema.fields() {
        if !matches!(field.data_type(), DataType::Utf8 | DataType::Dictionary(..)) {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    let mut properties = builder.build();
    add_encoded_arrow_schema_to_metadata(schema, &mut properties);
    properties
}

fn check_batch(schema: &SchemaRef, batch: &RecordBatch) -> Result<(), EncodeError> {
    if schema.fields().len() != batch.num_columns() {
        return Err(EncodeError::ColumnCount {
            expected: schema.fields().len(),
            found: batch.num_columns(),
        });
    }
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let found = column.data_type();
        if found != field.data_type()
            && !(is_dictionary_utf8(found) && field.data_type() == &DataType::Utf8)
        {
            return Err(EncodeError::ColumnType {
                column: field.name().clone(),
                expected: field.data_type().clone(),
                found: found.clone(),
            });
        }
        if !field.is_nullable() {
            let nulls = column.logical_null_count();
            if nulls > 0 {
                return Err(EncodeError::NullInRequired {
                    column: field.name().clone(),
                    nulls,
                });
            }
        }
    }
    Ok(())
}

fn is_dictionary_utf8(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Dictionary(key, value)
        if key.as_ref() == &DataType::Int32 && value.as_ref() == &DataType::Utf8)
}

/// The column as runs of output dictionary indices and that dictionary, when this encoder may
/// write it itself: a flat `Dictionary(Int32, Utf8)` leaf, or a Date32 or microsecond timestamp
/// leaf without nulls and with few distinct values (a partition's period days, a run's
/// timestamps), whose settings need nothing this encoder lacks. `requested` are the caller's
/// properties: `file` turns the dictionary off for columns that are not text, which is about
/// parquet's own writer.
fn fast_path<'a>(
    field: &Field,
    column: &'a ArrayRef,
    requested: &WriterProperties,
    file: &WriterProperties,
    leaf: usize,
    parquet_schema: &parquet::schema::types::SchemaDescriptor,
) -> Option<(Runs, Dictionary<'a>)> {
    let declared = field.data_type();
    let descr = parquet_schema.column(leaf);
    let path = descr.path();
    let codec_ok = matches!(
        file.compression(path),
        Compression::UNCOMPRESSED | Compression::ZSTD(_)
    );
    let plain_fallback = file.encoding(path).is_some_and(|e| e != Encoding::PLAIN);
    let settings_ok = codec_ok
        && !plain_fallback
        && requested.dictionary_enabled(path)
        && file.bloom_filter_properties(path).is_none();
    if !settings_ok || column.data_type() != declared && !is_dictionary_utf8(column.data_type()) {
        return None;
    }
    match column.data_type() {
        data_type if is_dictionary_utf8(data_type) => (declared == &DataType::Utf8
            || is_dictionary_utf8(declared))
        .then(|| text_dictionary(column.as_dictionary::<Int32Type>())),
        DataType::Date32 => {
            let dates = column.as_primitive::<arrow_array::types::Date32Type>();
            few_distinct(dates).map(|(runs, values)| (runs, Dictionary::Int32(values)))
        }
        DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, _) => {
            let times = column.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
            few_distinct(times).map(|(runs, values)| (runs, Dictionary::Int64(values)))
        }
        _ => None,
    }
}

/// A chunk's rows as runs of (index into its output dictionary or [`NULL_KEY`], length).
type Runs = Vec<(i32, usize)>;

/// The output dictionary of a string column and its rows as runs of indices into it: the used
/// values, sorted and deduplicated, so an index compares like its value and page min/max are the
/// values at the smallest and largest index.
fn text_dictionary(array: &DictionaryArray<Int32Type>) -> (Runs, Dictionary<'_>) {
    let values = array.values().as_string::<i32>();
    // Logical nulls: a null key, or a valid key pointing at a null value.
    let nulls = array.logical_nulls();
    // Sorted rows come in long runs of one key: everything after this one pass over the keys
    // works per run, not per row.
    let mut runs = key_runs(array.keys().values(), nulls.as_ref());
    let mut used = vec![false; values.len()];
    for &(key, _) in runs.iter().filter(|(key, _)| *key != NULL_KEY) {
        used[key as usize] = true;
    }
    let mut order: Vec<usize> = (0..values.len()).filter(|&k| used[k]).collect();
    order.sort_unstable_by(|&a, &b| values.value(a).cmp(values.value(b)));
    let mut dictionary: Vec<&str> = Vec::with_capacity(order.len());
    let mut remap = vec![0i32; values.len()];
    for key in order {
        let value = values.value(key);
        if dictionary.last() != Some(&value) {
            dictionary.push(value);
        }
        remap[key] = (dictionary.len() - 1) as i32;
    }
    for (key, _) in runs.iter_mut().filter(|(key, _)| *key != NULL_KEY) {
        *key = remap[*key as usize];
    }
    (runs, Dictionary::Text(dictionary))
}

/// Most distinct values a number column may have for this encoder to write it as a dictionary;
/// more go through parquet's own writer.
const MAX_NUMBER_DICTIONARY: usize = 64;

/// A column without nulls as runs of indices into its sorted distinct values, when it has few
/// (see [`MAX_NUMBER_DICTIONARY`]).
fn few_distinct<T: arrow_array::ArrowPrimitiveType>(
    array: &arrow_array::PrimitiveArray<T>,
) -> Option<(Runs, Vec<T::Native>)>
where
    T::Native: Ord,
{
    if array.null_count() > 0 {
        return None;
    }
    let mut runs = value_runs(array.values());
    let mut distinct: Vec<T::Native> = Vec::new();
    for &(value, _) in &runs {
        if let Err(at) = distinct.binary_search(&value) {
            if distinct.len() == MAX_NUMBER_DICTIONARY {
                return None;
            }
            distinct.insert(at, value);
        }
    }
    let runs = runs
        .drain(..)
        .map(|(value, length)| {
            let index = distinct
                .binary_search(&value)
                .expect("every value was added");
            (index as i32, length)
        })
        .collect();
    Some((runs, distinct))
}

/// The output dictionary of a chunk, sorted, so that an index compares like its value.
enum Dictionary<'a> {
    /// Strings: BYTE_ARRAY.
    Text(Vec<&'a str>),
    /// Dates: INT32 days.
    Int32(Vec<i32>),
    /// Timestamps: INT64 microseconds.
    Int64(Vec<i64>),
}

impl Dictionary<'_> {
    fn len(&self) -> usize {
        match self {
            Dictionary::Text(values) => values.len(),
            Dictionary::Int32(values) => values.len(),
            Dictionary::Int64(values) => values.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dictionary page's body: the values PLAIN-encoded.
    fn plain(&self) -> Vec<u8> {
        let mut plain = Vec::new();
        match self {
            Dictionary::Text(values) => {
                for value in values {
                    plain.extend_from_slice(&(value.len() as u32).to_le_bytes());
                    plain.extend_from_slice(value.as_bytes());
                }
            }
            Dictionary::Int32(values) => values
                .iter()
                .for_each(|v| plain.extend_from_slice(&v.to_le_bytes())),
            Dictionary::Int64(values) => values
                .iter()
                .for_each(|v| plain.extend_from_slice(&v.to_le_bytes())),
        }
        plain
    }

    /// Whether the values are strings, whose unencoded bytes the metadata records.
    fn is_text(&self) -> bool {
        matches!(self, Dictionary::Text(_))
    }

    /// Bytes of value `index` before encoding, which the metadata records for strings only.
    fn text_bytes(&self, index: u32) -> Option<i64> {
        match self {
            Dictionary::Text(values) => Some(values[index as usize].len() as i64),
            _ => None,
        }
    }

    /// Value `index` as the column index stores bounds (its PLAIN bytes, without a length).
    fn bound(&self, index: u32) -> Vec<u8> {
        match self {
            Dictionary::Text(values) => values[index as usize].as_bytes().to_vec(),
            Dictionary::Int32(values) => values[index as usize].to_le_bytes().to_vec(),
            Dictionary::Int64(values) => values[index as usize].to_le_bytes().to_vec(),
        }
    }

    fn physical_type(&self) -> Type {
        match self {
            Dictionary::Text(_) => Type::BYTE_ARRAY,
            Dictionary::Int32(_) => Type::INT32,
            Dictionary::Int64(_) => Type::INT64,
        }
    }

    /// Min/max exactly as written (strings are never truncated: ours are short, and exact
    /// bounds prune best; none when every row is null), null count and, for a chunk, the
    /// distinct count.
    fn statistics(&self, summary: &PageSummary, distinct: Option<u64>) -> Statistics {
        match self {
            Dictionary::Text(values) => Statistics::ByteArray(value_statistics(
                |i| ByteArray::from(values[i]),
                summary,
                distinct,
            )),
            Dictionary::Int32(values) => {
                Statistics::Int32(value_statistics(|i| values[i], summary, distinct))
            }
            Dictionary::Int64(values) => {
                Statistics::Int64(value_statistics(|i| values[i], summary, distinct))
            }
        }
    }
}

/// parquet's `Bytes` over `buffer`, to hand a finished chunk to `append_column`. `bytes` is not
/// one of our dependencies; `Page`'s buffer is the public route to that type, and it takes the
/// `Vec` without copying.
fn chunk_reader(buffer: Vec<u8>) -> impl ChunkReader {
    let page = Page::DictionaryPage {
        buf: buffer.into(),
        num_values: 0,
        encoding: Encoding::PLAIN,
        is_sorted: false,
    };
    page.buffer().clone()
}

/// zstd contexts by level, reused across the column chunks of a file: a fresh context per chunk
/// would allocate its workspace again for every one of them.
#[derive(Default)]
struct Compressors {
    zstd: Vec<(i32, zstd::bulk::Compressor<'static>)>,
}

impl Compressors {
    /// `page` compressed as `compression` says (it is UNCOMPRESSED or ZSTD: see `fast_path`).
    fn compress(&mut self, compression: Compression, page: Vec<u8>) -> std::io::Result<Vec<u8>> {
        let Compression::ZSTD(level) = compression else {
            return Ok(page);
        };
        let level = level.compression_level();
        let position = match self.zstd.iter().position(|(l, _)| *l == level) {
            Some(position) => position,
            None => {
                self.zstd.push((level, zstd::bulk::Compressor::new(level)?));
                self.zstd.len() - 1
            }
        };
        self.zstd[position].1.compress(&page)
    }
}

/// One `Dictionary(Int32, Utf8)` column chunk being written by hand.
struct DictionaryChunk<'a> {
    descr: &'a ColumnDescPtr,
    properties: &'a WriterProperties,
    compressors: &'a mut Compressors,
    column: &'a str,
    row_group: usize,
}

/// What one data page holds, for the chunk's statistics and page index.
struct PageSummary {
    nulls: usize,
    /// Smallest and largest output dictionary index; `None` when every row is null.
    range: Option<(u32, u32)>,
}

impl DictionaryChunk<'_> {
    /// The chunk's bytes (offsets start at 0) and what `append_column` needs to place them.
    /// `runs` are the rows as runs of indices into `dictionary` (or [`NULL_KEY`]).
    fn encode(
        &mut self,
        runs: &[(i32, usize)],
        dictionary: &Dictionary<'_>,
    ) -> Result<(Vec<u8>, ColumnCloseResult), EncodeError> {
        let rows_total: usize = runs.iter().map(|&(_, length)| length).sum();
        let bit_width = index_bit_width(dictionary.len());

        let (descr, properties) = (self.descr, self.properties);
        let path = descr.path();
        let compression = properties.compression(path);
        let statistics = properties.statistics_enabled(path);
        let header_statistics = properties.write_page_header_statistics(path);
        let nullable = descr.max_def_level() > 0;
        // Indices take at most `bit_width` bits each, so this keeps a page under the byte limit.
        let rows_per_page = self
            .properties
            .column_data_page_row_count_limit(path)
            .min(properties.column_data_page_size_limit(path) * 8 / bit_width as usize)
            .max(1);

        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = SerializedPageWriter::new(&mut sink);
        let mut total_compressed = 0i64;
        let mut total_uncompressed = 0i64;

        let plain = dictionary.plain();
        let uncompressed = plain.len();
        let dictionary_page = Page::DictionaryPage {
            buf: self.compress(compression, plain)?.into(),
            num_values: dictionary.len() as u32,
            encoding: properties.dictionary_page_encoding(),
            is_sorted: true,
        };
        let spec = pages
            .write_page(CompressedPage::new(dictionary_page, uncompressed))
            .map_err(|source| self.error(source))?;
        total_compressed += spec.compressed_size as i64;
        total_uncompressed += spec.uncompressed_size as i64;

        let mut summaries = Vec::new();
        let mut offsets = OffsetIndexBuilder::new();
        let mut data_page_offset = None;
        let mut index_runs: Vec<(u32, usize)> = Vec::new();
        let mut level_runs: Vec<(u32, usize)> = Vec::new();
        let mut unencoded_bytes = 0i64;
        let lengths: Vec<Option<i64>> = (0..dictionary.len() as u32)
            .map(|i| dictionary.text_bytes(i))
            .collect();
        // The run being consumed and how much of it earlier pages took.
        let (mut run, mut taken) = (0, 0);
        let mut start = 0;
        while start < rows_total {
            let end = rows_total.min(start + rows_per_page);
            let rows = end - start;
            index_runs.clear();
            level_runs.clear();
            let (mut lo, mut hi, mut nulls, mut page_bytes) = (u32::MAX, 0, 0, 0);
            let mut left = rows;
            while left > 0 {
                let (key, length) = runs[run];
                let count = (length - taken).min(left);
                let level = u32::from(key != NULL_KEY);
                push_run(&mut level_runs, level, count);
                if key == NULL_KEY {
                    nulls += count;
                } else {
                    let index = key as u32;
                    (lo, hi) = (lo.min(index), hi.max(index));
                    page_bytes += lengths[index as usize].unwrap_or(0) * count as i64;
                    push_run(&mut index_runs, index, count);
                }
                left -= count;
                taken += count;
                if taken == length {
                    (run, taken) = (run + 1, 0);
                }
            }
            unencoded_bytes += page_bytes;
            let summary = PageSummary {
                nulls,
                range: (nulls < rows).then_some((lo, hi)),
            };

            let mut buffer = Vec::new();
            if nullable {
                // DataPage v1: definition levels are prefixed by their byte length.
                buffer.extend_from_slice(&[0; 4]);
                rle_hybrid(&level_runs, 1, &mut buffer);
                let length = (buffer.len() - 4) as u32;
                buffer[..4].copy_from_slice(&length.to_le_bytes());
            }
            buffer.push(bit_width);
            rle_hybrid(&index_runs, bit_width, &mut buffer);
            let uncompressed = buffer.len();
            let page = Page::DataPage {
                buf: self.compress(compression, buffer)?.into(),
                num_values: rows as u32,
                encoding: properties.dictionary_data_page_encoding(),
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: header_statistics.then(|| dictionary.statistics(&summary, None)),
            };
            let spec = pages
                .write_page(CompressedPage::new(page, uncompressed))
                .map_err(|source| self.error(source))?;
            data_page_offset.get_or_insert(spec.offset as i64);
            offsets.append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
            offsets.append_row_count(rows as i64);
            offsets
                .append_unencoded_byte_array_data_bytes(dictionary.is_text().then_some(page_bytes));
            total_compressed += spec.compressed_size as i64;
            total_uncompressed += spec.uncompressed_size as i64;
            summaries.push(summary);
            start = end;
        }
        pages.close().map_err(|source| self.error(source))?;
        let bytes_written = sink.bytes_written() as u64;
        let buffer = sink.into_inner().map_err(|source| self.error(source))?;

        let chunk_summary = PageSummary {
            nulls: summaries.iter().map(|s| s.nulls).sum(),
            range: (!dictionary.is_empty()).then(|| (0, dictionary.len() as u32 - 1)),
        };
        let distinct = self
            .properties
            .write_row_group_number_distinct_values()
            .then_some(dictionary.len() as u64);
        let data_pages = summaries.len() as i32;
        let mut metadata = ColumnChunkMetaData::builder(Arc::clone(descr))
            .set_compression(compression)
            .set_encodings_mask(EncodingMask::new_from_encodings(
                [
                    Encoding::RLE,
                    properties.dictionary_page_encoding(),
                    properties.dictionary_data_page_encoding(),
                ]
                .iter(),
            ))
            .set_page_encoding_stats(vec![
                PageEncodingStats {
                    page_type: PageType::DICTIONARY_PAGE,
                    encoding: properties.dictionary_page_encoding(),
                    count: 1,
                },
                PageEncodingStats {
                    page_type: PageType::DATA_PAGE,
                    encoding: properties.dictionary_data_page_encoding(),
                    count: data_pages,
                },
            ])
            .set_total_compressed_size(total_compressed)
            .set_total_uncompressed_size(total_uncompressed)
            .set_num_values(rows_total as i64)
            .set_data_page_offset(data_page_offset.expect("a non-empty row group has a data page"))
            .set_dictionary_page_offset(Some(0));
        if statistics != EnabledStatistics::None {
            metadata = metadata
                .set_statistics(dictionary.statistics(&chunk_summary, distinct))
                .set_unencoded_byte_array_data_bytes(
                    dictionary.is_text().then_some(unencoded_bytes),
                );
        }
        let metadata = metadata.build().map_err(|source| self.error(source))?;
        let column_index = if statistics == EnabledStatistics::Page {
            Some(column_index(dictionary, &summaries).map_err(|source| self.error(source))?)
        } else {
            None
        };
        let offset_index = (!properties.offset_index_disabled()).then(|| offsets.build());
        let close = ColumnCloseResult {
            bytes_written,
            rows_written: rows_total as u64,
            metadata,
            bloom_filter: None,
            column_index,
            offset_index,
        };
        Ok((buffer, close))
    }

    fn compress(
        &mut self,
        compression: Compression,
        page: Vec<u8>,
    ) -> Result<Vec<u8>, EncodeError> {
        self.compressors
            .compress(compression, page)
            .map_err(|source| EncodeError::Compress {
                column: self.column.to_owned(),
                row_group: self.row_group,
                source,
            })
    }

    fn error(&self, source: ParquetError) -> EncodeError {
        EncodeError::Column {
            column: self.column.to_owned(),
            row_group: self.row_group,
            source,
        }
    }
}

/// Bits per dictionary index. At least 1: a width of 0 is legal, but not every reader has met it.
fn index_bit_width(dictionary_len: usize) -> u8 {
    let largest = dictionary_len.saturating_sub(1) as u32;
    (32 - largest.leading_zeros()).max(1) as u8
}

/// Statistics of a page or chunk from its smallest and largest dictionary index, `value` giving
/// the value at an index.
fn value_statistics<T>(
    value: impl Fn(usize) -> T,
    summary: &PageSummary,
    distinct: Option<u64>,
) -> ValueStatistics<T> {
    let (lo, hi) = summary.range.unzip();
    ValueStatistics::new(
        lo.map(|i| value(i as usize)),
        hi.map(|i| value(i as usize)),
        distinct,
        Some(summary.nulls as u64),
        false,
    )
}

/// The column index: min/max per page, null pages, and the boundary order, which follows from
/// the indices since they sort like the values.
fn column_index(
    dictionary: &Dictionary<'_>,
    summaries: &[PageSummary],
) -> parquet::errors::Result<parquet::file::page_index::column_index::ColumnIndexMetaData> {
    let mut builder = ColumnIndexBuilder::new(dictionary.physical_type());
    let (mut ascending, mut descending) = (true, true);
    let mut last: Option<(u32, u32)> = None;
    for summary in summaries {
        match summary.range {
            None => builder.append(true, vec![], vec![], summary.nulls as i64, None),
            Some((lo, hi)) => {
                if let Some((last_lo, last_hi)) = last {
                    ascending &= last_lo <= lo && last_hi <= hi;
                    descending &= last_lo >= lo && last_hi >= hi;
                }
                last = Some((lo, hi));
                builder.append(
                    false,
                    dictionary.bound(lo),
                    dictionary.bound(hi),
                    summary.nulls as i64,
                    None,
                );
            }
        }
    }
    builder.set_boundary_order(match (ascending, descending) {
        (true, _) => BoundaryOrder::ASCENDING,
        (false, true) => BoundaryOrder::DESCENDING,
        (false, false) => BoundaryOrder::UNORDERED,
    });
    builder.build()
}

/// The row that `key_runs` gives for a null row; real keys are never negative.
const NULL_KEY: i32 = -1;

/// `keys` as runs of (key, length), null rows as [`NULL_KEY`].
fn key_runs(keys: &[i32], nulls: Option<&arrow_buffer::NullBuffer>) -> Vec<(i32, usize)> {
    match nulls.filter(|n| n.null_count() > 0) {
        None => value_runs(keys),
        Some(nulls) => {
            let mut runs = Vec::new();
            for (row, valid) in nulls.iter().enumerate() {
                push_run(&mut runs, if valid { keys[row] } else { NULL_KEY }, 1);
            }
            runs
        }
    }
}

/// `values` as runs of (value, length).
fn value_runs<T: Copy + PartialEq>(values: &[T]) -> Vec<(T, usize)> {
    let mut runs = Vec::new();
    let mut start = 0;
    while start < values.len() {
        let (value, rest) = (values[start], &values[start..]);
        // Blocks of 16 compared without early exit, which the compiler vectorises.
        let mut length = 1;
        while rest.len() >= length + 16
            && rest[length..length + 16]
                .iter()
                .fold(true, |same, &v| same & (v == value))
        {
            length += 16;
        }
        length += rest[length..].iter().take_while(|&&v| v == value).count();
        runs.push((value, length));
        start += length;
    }
    runs
}

/// Appends `count` × `value` to `runs`, extending the last run when it holds `value`.
fn push_run<T: PartialEq>(runs: &mut Vec<(T, usize)>, value: T, count: usize) {
    match runs.last_mut() {
        Some((last, length)) if *last == value => *length += count,
        _ => runs.push((value, count)),
    }
}

/// Appends `runs` of (value, length) in Parquet's RLE/bit-packed hybrid encoding (no length
/// prefix) with `bit_width` bits per value. A run that still has 8 or more values once the
/// pending bit-packed group is full becomes an RLE run; the rest is bit-packed in groups of 8,
/// the last group padded with zeros (readers stop at the page's value count).
fn rle_hybrid(runs: &[(u32, usize)], bit_width: u8, out: &mut Vec<u8>) {
    let mut pending: Vec<u32> = Vec::new();
    for &(value, mut count) in runs {
        if !pending.len().is_multiple_of(8) {
            let fill = count.min(8 - pending.len() % 8);
            pending.extend(std::iter::repeat_n(value, fill));
            count -= fill;
        }
        if count >= 8 {
            flush_bit_packed(&mut pending, bit_width, out);
            rle_run(count, value, bit_width, out);
        } else {
            pending.extend(std::iter::repeat_n(value, count));
        }
    }
    flush_bit_packed(&mut pending, bit_width, out);
}

/// Writes `pending` as one bit-packed run (padded to whole groups of 8) and empties it.
fn flush_bit_packed(pending: &mut Vec<u32>, bit_width: u8, out: &mut Vec<u8>) {
    if pending.is_empty() {
        return;
    }
    let groups = pending.len().div_ceil(8);
    put_varint(out, ((groups as u64) << 1) | 1);
    bit_pack(pending, groups * 8, bit_width, out);
    pending.clear();
}

/// Appends one RLE run: `count` times `value`.
fn rle_run(count: usize, value: u32, bit_width: u8, out: &mut Vec<u8>) {
    put_varint(out, (count as u64) << 1);
    let bytes = usize::from(bit_width).div_ceil(8);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// Packs `values` LSB first, `bit_width` bits each, padded with zeros to `count` values.
fn bit_pack(values: &[u32], count: usize, bit_width: u8, out: &mut Vec<u8>) {
    let (mut buffer, mut bits) = (0u64, 0u32);
    let padding = std::iter::repeat_n(&0u32, count - values.len());
    for &value in values.iter().chain(padding) {
        buffer |= u64::from(value) << bits;
        bits += u32::from(bit_width);
        while bits >= 8 {
            out.push(buffer as u8);
            buffer >>= 8;
            bits -= 8;
        }
    }
    debug_assert_eq!(bits, 0, "groups of 8 values fill whole bytes");
}

/// ULEB128, as the hybrid encoding's run headers are written.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int32Type as Key;
    use arrow_array::{
        Date32Array, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow_schema::{Schema, TimeUnit};
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
    use parquet::file::page_index::column_index::ColumnIndexMetaData;

    fn dictionary(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(values.iter().copied().collect::<DictionaryArray<Key>>())
    }

    fn utf8_dictionary() -> DataType {
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    }

    /// A batch of `columns` under `schema`'s names and nullability, with the columns' own types
    /// (a batch's schema must match its columns, so a dictionary column cannot say Utf8 there).
    fn batch(schema: &SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
        let fields: Vec<_> = schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(field, column)| {
                field
                    .as_ref()
                    .clone()
                    .with_data_type(column.data_type().clone())
            })
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    fn write(schema: &SchemaRef, batch: &RecordBatch, properties: &WriterProperties) -> Vec<u8> {
        write_batch(Vec::new(), schema, batch, properties).unwrap()
    }

    /// The file's batches concatenated, and its metadata with the page index.
    fn read(file: Vec<u8>) -> (RecordBatch, Arc<ParquetMetaData>) {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let builder =
            ParquetRecordBatchReaderBuilder::try_new_with_options(chunk_reader(file), options)
                .unwrap();
        let metadata = Arc::clone(builder.metadata());
        let schema = Arc::clone(builder.schema());
        let batches: Vec<_> = builder.build().unwrap().map(Result::unwrap).collect();
        let batch = arrow_select::concat::concat_batches(&schema, &batches).unwrap();
        (batch, metadata)
    }

    fn strings(array: &ArrayRef) -> Vec<Option<String>> {
        let array = arrow_cast::cast(array, &DataType::Utf8).unwrap();
        array
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect()
    }

    fn small_pages() -> WriterProperties {
        super::super::writer_properties()
            .into_builder()
            .set_max_row_group_row_count(Some(1000))
            .set_data_page_row_count_limit(100)
            .build()
    }

    fn observations() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("indicator_id", DataType::Utf8, false),
            Field::new("area_level", utf8_dictionary(), false),
            Field::new("sex", DataType::Utf8, true),
            Field::new("period_start", DataType::Date32, false),
            Field::new("value", DataType::Float64, true),
            Field::new("sample_size", DataType::Int64, true),
            Field::new(
                "ingested_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("breakdown", DataType::Utf8, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            dictionary(&[Some("b"), Some("a"), Some("a"), Some("c"), Some("b")]),
            dictionary(&[Some("county"); 5]),
            dictionary(&[Some("F"), None, Some("M"), Some("T"), None]),
            Arc::new(Date32Array::from(vec![19358, 19358, 19723, 19723, 20089])),
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(-2.0),
                Some(0.0),
                None,
            ])),
            Arc::new(Int64Array::from(vec![
                Some(10),
                None,
                Some(30),
                None,
                Some(50),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_700_000_000_000_000; 5])
                    .with_timezone("UTC"),
            ),
            Arc::new(StringArray::from(vec!["", "k=v", "", "", "k=w"])),
        ];
        let batch = batch(&schema, columns);
        (schema, batch)
    }

    #[test]
    fn every_column_reads_back_with_its_declared_type_and_values() {
        let (schema, batch) = observations();
        let (read, _) = read(write(&schema, &batch, &super::super::writer_properties()));
        assert_eq!(read.schema().fields(), schema.fields());
        for (index, field) in schema.fields().iter().enumerate() {
            let (written, back) = (batch.column(index), read.column(index));
            match field.data_type() {
                DataType::Utf8 | DataType::Dictionary(..) => {
                    assert_eq!(strings(written), strings(back), "{}", field.name())
                }
                _ => assert_eq!(written.as_ref(), back.as_ref(), "{}", field.name()),
            }
        }
    }

    #[test]
    fn only_encodings_every_reader_knows_are_written() {
        let (schema, batch) = observations();
        let (_, metadata) = read(write(&schema, &batch, &super::super::writer_properties()));
        let known = [Encoding::PLAIN, Encoding::RLE, Encoding::RLE_DICTIONARY];
        for column in metadata.row_group(0).columns() {
            for encoding in column.encodings() {
                assert!(
                    known.contains(&encoding),
                    "{}: {encoding}",
                    column.column_path()
                );
            }
        }
    }

    #[test]
    fn string_columns_get_a_sorted_dictionary_page_zstd_and_exact_statistics() {
        let (schema, batch) = observations();
        let (_, metadata) = read(write(&schema, &batch, &super::super::writer_properties()));
        let row_group = metadata.row_group(0);
        for column in row_group.columns() {
            assert!(
                matches!(column.compression(), Compression::ZSTD(_)),
                "{}",
                column.column_path()
            );
        }
        let indicator = row_group.column(0);
        assert_eq!(
            indicator.dictionary_page_offset(),
            Some(indicator.byte_range().0 as i64)
        );
        let statistics = indicator.statistics().unwrap();
        assert_eq!(statistics.min_bytes_opt(), Some(&b"a"[..]));
        assert_eq!(statistics.max_bytes_opt(), Some(&b"c"[..]));
        assert_eq!(statistics.null_count_opt(), Some(0));
        let sex = row_group.column(2).statistics().unwrap();
        assert_eq!(
            (sex.min_bytes_opt(), sex.max_bytes_opt()),
            (Some(&b"F"[..]), Some(&b"T"[..]))
        );
        assert_eq!(sex.null_count_opt(), Some(2));
        // Values are nearly all distinct: written plain, without a dictionary.
        assert_eq!(row_group.column(4).dictionary_page_offset(), None);
        assert_eq!(
            row_group.column(4).statistics().unwrap().null_count_opt(),
            Some(2)
        );
    }

    /// 2500 rows of sorted codes, each repeated 7 times, with every 13th row null.
    fn sorted_codes() -> (SchemaRef, RecordBatch, Vec<Option<String>>) {
        let codes: Vec<Option<String>> = (0..2500)
            .map(|row| (row % 13 != 5).then(|| format!("{:04}", row / 7)))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("area_code", DataType::Utf8, true),
            Field::new("row", DataType::Int64, false),
        ]));
        let column: DictionaryArray<Key> = codes.iter().map(Option::as_deref).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(column),
            Arc::new(Int64Array::from_iter_values(0..2500)),
        ];
        let batch = batch(&schema, columns);
        (schema, batch, codes)
    }

    #[test]
    fn row_groups_and_pages_follow_the_limits_and_the_page_index_is_right() {
        let (schema, batch, codes) = sorted_codes();
        let (read, metadata) = read(write(&schema, &batch, &small_pages()));
        assert_eq!(strings(read.column(0)), codes);
        let rows: Vec<_> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(rows, [1000, 1000, 500]);
        for (group, start) in [(0, 0), (1, 1000), (2, 2000)] {
            let page_index = metadata.page_index_for_row_group(group);
            let locations = page_index.offset_index(0).unwrap().page_locations();
            let first_rows: Vec<_> = locations.iter().map(|l| l.first_row_index).collect();
            let expected: Vec<_> = (0..rows[group]).step_by(100).collect();
            assert_eq!(first_rows, expected);
            let chunk = metadata.row_group(group).column(0);
            let (chunk_start, chunk_length) = chunk.byte_range();
            assert!(
                locations[0].offset > chunk_start as i64,
                "the dictionary page comes first"
            );
            let last = locations.last().unwrap();
            let end = last.offset + i64::from(last.compressed_page_size);
            assert_eq!(end as u64, chunk_start + chunk_length);

            let index = page_index.column_index(0).unwrap();
            assert_eq!(index.get_boundary_order(), Some(BoundaryOrder::ASCENDING));
            let ColumnIndexMetaData::BYTE_ARRAY(index) = index else {
                panic!("a string column has a byte array column index")
            };
            for (page, location) in locations.iter().enumerate() {
                let first = start + location.first_row_index as usize;
                let page_codes = &codes[first..(first + 100).min(start + rows[group] as usize)];
                let present = || page_codes.iter().flatten().map(String::as_bytes);
                assert_eq!(index.min_value(page), present().min());
                assert_eq!(index.max_value(page), present().max());
                let nulls = page_codes.iter().filter(|c| c.is_none()).count() as i64;
                assert_eq!(index.null_count(page), Some(nulls));
            }
        }
    }

    /// A file of one Date32 column with `days` and one timestamp column of `times`.
    fn dates_and_times(days: Vec<i32>, times: Vec<i64>) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("period_start", DataType::Date32, false),
            Field::new(
                "ingested_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(days)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("UTC")),
        ];
        let batch = batch(&schema, columns);
        (schema, batch)
    }

    #[test]
    fn dates_and_times_of_few_values_get_a_dictionary_typed_statistics_and_page_bounds() {
        // Two periods of a year partition and one run timestamp, over several pages.
        let days: Vec<i32> = (0..250)
            .map(|i| if i < 130 { 19358 } else { 19539 })
            .collect();
        let (schema, batch) = dates_and_times(days.clone(), vec![1_700_000_000_000_000; 250]);
        let (read, metadata) = read(write(&schema, &batch, &small_pages()));
        assert_eq!(read.column(0).as_ref(), batch.column(0).as_ref());
        assert_eq!(read.column(1).as_ref(), batch.column(1).as_ref());
        let chunk = metadata.row_group(0).column(0);
        assert!(chunk.encodings().any(|e| e == Encoding::RLE_DICTIONARY));
        let Some(Statistics::Int32(statistics)) = chunk.statistics() else {
            panic!("a date column has Int32 statistics")
        };
        assert_eq!(
            (statistics.min_opt(), statistics.max_opt()),
            (Some(&19358), Some(&19539))
        );
        let Some(Statistics::Int64(statistics)) = metadata.row_group(0).column(1).statistics()
        else {
            panic!("a timestamp column has Int64 statistics")
        };
        assert_eq!(statistics.min_opt(), Some(&1_700_000_000_000_000));
        let page_index = metadata.page_index_for_row_group(0);
        let ColumnIndexMetaData::INT32(index) = page_index.column_index(0).unwrap() else {
            panic!("a date column has an INT32 column index")
        };
        // Pages of 100 rows: the first holds the first period, the second both, the third the
        // second.
        let bounds: Vec<_> = (0..3)
            .map(|p| (index.min_value(p), index.max_value(p)))
            .collect();
        let (first, second) = (Some(&19358), Some(&19539));
        assert_eq!(bounds, [(first, first), (first, second), (second, second)]);
    }

    #[test]
    fn dates_of_many_values_go_through_parquets_own_writer() {
        let days: Vec<i32> = (0..MAX_NUMBER_DICTIONARY as i32 + 1).collect();
        let n = days.len();
        let (schema, batch) = dates_and_times(days, vec![0; n]);
        let (read, metadata) = read(write(&schema, &batch, &super::super::writer_properties()));
        assert_eq!(read.column(0).as_ref(), batch.column(0).as_ref());
        let encodings: Vec<_> = metadata.row_group(0).column(0).encodings().collect();
        assert!(
            !encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
        let encodings: Vec<_> = metadata.row_group(0).column(1).encodings().collect();
        assert!(
            encodings.contains(&Encoding::RLE_DICTIONARY),
            "{encodings:?}"
        );
    }

    #[test]
    fn row_group_statistics_prune_a_sorted_column() {
        let (schema, batch, _) = sorted_codes();
        let (_, metadata) = read(write(&schema, &batch, &small_pages()));
        let bounds: Vec<_> = metadata
            .row_groups()
            .iter()
            .map(|group| {
                let statistics = group.column(0).statistics().unwrap();
                (
                    statistics.min_bytes_opt().unwrap(),
                    statistics.max_bytes_opt().unwrap(),
                )
            })
            .collect();
        // Rows 0..1000 hold codes 0000..=0142, 1000..2000 hold 0142..=0285, the rest 0285..=0357.
        assert_eq!(bounds[0], (&b"0000"[..], &b"0142"[..]));
        assert_eq!(bounds[1], (&b"0142"[..], &b"0285"[..]));
        assert_eq!(bounds[2], (&b"0285"[..], &b"0357"[..]));
        let wanted = &b"0200"[..];
        let groups: Vec<_> = (0..bounds.len())
            .filter(|&g| bounds[g].0 <= wanted && wanted <= bounds[g].1)
            .collect();
        assert_eq!(groups, [1], "only the middle row group can hold `0200`");
    }

    #[test]
    fn an_unsorted_dictionary_with_unused_and_repeated_values_is_rewritten() {
        let values = StringArray::from(vec!["z", "unused", "a", "z", "m"]);
        let keys = Int32Array::from(vec![Some(3), Some(0), None, Some(2), Some(4), Some(2)]);
        let column = DictionaryArray::<Key>::try_new(keys, Arc::new(values)).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "source",
            utf8_dictionary(),
            true,
        )]));
        let batch = batch(&schema, vec![Arc::new(column)]);
        let (read, metadata) = read(write(&schema, &batch, &super::super::writer_properties()));
        let expected = [Some("z"), Some("z"), None, Some("a"), Some("m"), Some("a")];
        assert_eq!(
            strings(read.column(0)),
            expected.map(|s| s.map(str::to_owned))
        );
        let back = read.column(0).as_dictionary::<Key>();
        assert_eq!(back.values().len(), 3, "only used values, each once");
        let statistics = metadata.row_group(0).column(0).statistics().unwrap();
        assert_eq!(statistics.min_bytes_opt(), Some(&b"a"[..]));
        assert_eq!(statistics.max_bytes_opt(), Some(&b"z"[..]));
    }

    #[test]
    fn an_all_null_string_column_has_no_min_or_max() {
        let schema = Arc::new(Schema::new(vec![Field::new("grade", DataType::Utf8, true)]));
        let batch = batch(&schema, vec![dictionary(&[None, None, None])]);
        let (read, metadata) = read(write(&schema, &batch, &super::super::writer_properties()));
        assert_eq!(read.column(0).null_count(), 3);
        let statistics = metadata.row_group(0).column(0).statistics().unwrap();
        assert_eq!(statistics.min_bytes_opt(), None);
        assert_eq!(statistics.null_count_opt(), Some(3));
        let index = metadata.page_index_for_row_group(0);
        assert!(index.column_index(0).unwrap().is_null_page(0));
    }

    #[test]
    fn an_empty_batch_gives_a_file_without_row_groups() {
        let (schema, batch) = observations();
        let (read, metadata) = read(write(&schema, &batch.slice(0, 0), &small_pages()));
        assert_eq!((read.num_rows(), metadata.num_row_groups()), (0, 0));
    }

    #[test]
    fn a_column_of_the_wrong_type_is_named() {
        let (schema, batch) = observations();
        let mut columns = batch.columns().to_vec();
        columns[3] = Arc::new(Int32Array::from(vec![1; 5]));
        let batch = super::tests::batch(&schema, columns);
        let error = write_batch(Vec::new(), &schema, &batch, &small_pages()).unwrap_err();
        insta::assert_snapshot!(error, @"column `period_start` is Int32 but the schema declares Date32; only a Dictionary(Int32, Utf8) column may stand in for a declared Utf8");
    }

    #[test]
    fn a_null_in_a_non_nullable_column_is_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("unit", DataType::Utf8, false)]));
        let loose = Arc::new(Schema::new(vec![Field::new("unit", DataType::Utf8, true)]));
        let batch = batch(&loose, vec![dictionary(&[Some("count"), None])]);
        let error = write_batch(Vec::new(), &schema, &batch, &small_pages()).unwrap_err();
        insta::assert_snapshot!(error, @"column `unit` has 1 nulls but the schema declares it non-nullable");
    }

    #[test]
    fn a_dictionary_column_without_the_fast_path_goes_through_the_generic_writer() {
        let (schema, batch) = observations();
        let properties = super::super::writer_properties()
            .into_builder()
            .set_column_dictionary_enabled(ColumnPath::from("indicator_id"), false)
            .build();
        let (read, metadata) = read(write(&schema, &batch, &properties));
        assert_eq!(strings(read.column(0)), strings(batch.column(0)));
        assert_eq!(read.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(
            metadata.row_group(0).column(0).dictionary_page_offset(),
            None
        );
    }

    /// Decodes the RLE/bit-packed hybrid, as a reader does, to check `rle_hybrid` against.
    fn decode_hybrid(mut bytes: &[u8], bit_width: u8, count: usize) -> Vec<u32> {
        let varint = |bytes: &mut &[u8]| {
            let (mut value, mut shift) = (0u64, 0);
            loop {
                let byte = bytes[0];
                *bytes = &bytes[1..];
                value |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return value;
                }
            }
        };
        let mut values = Vec::new();
        while values.len() < count {
            let header = varint(&mut bytes);
            if header & 1 == 0 {
                let width = usize::from(bit_width).div_ceil(8);
                let mut value = [0u8; 4];
                value[..width].copy_from_slice(&bytes[..width]);
                bytes = &bytes[width..];
                values.extend(std::iter::repeat_n(
                    u32::from_le_bytes(value),
                    (header >> 1) as usize,
                ));
            } else {
                let packed = (header >> 1) as usize * 8;
                for i in 0..packed {
                    let mut value = 0u32;
                    for bit in 0..usize::from(bit_width) {
                        let position = i * usize::from(bit_width) + bit;
                        value |= u32::from(bytes[position / 8] >> (position % 8) & 1) << bit;
                    }
                    values.push(value);
                }
                bytes = &bytes[packed * usize::from(bit_width) / 8..];
            }
        }
        assert!(bytes.is_empty(), "nothing after the last run");
        values.truncate(count);
        values
    }

    #[test]
    fn long_runs_become_rle_runs() {
        let mut out = Vec::new();
        rle_hybrid(&[(5, 1000)], 3, &mut out);
        assert_eq!(
            out,
            [0xd0, 0x0f, 5],
            "header 1000 << 1 as ULEB128, then the value"
        );
    }

    proptest::proptest! {
        #[test]
        fn hybrid_encoding_round_trips(
            runs in proptest::collection::vec((0u32..300, 1usize..20), 0..60),
            bit_width in 9u8..=20,
        ) {
            let values: Vec<u32> = runs
                .iter()
                .flat_map(|&(value, length)| std::iter::repeat_n(value, length))
                .collect();
            let mut out = Vec::new();
            rle_hybrid(&runs, bit_width, &mut out);
            proptest::prop_assert_eq!(decode_hybrid(&out, bit_width, values.len()), values);
        }
    }

    #[test]
    fn bit_width_fits_the_largest_index_and_is_never_zero() {
        let widths: Vec<_> = [0, 1, 2, 3, 4, 5, 256, 257].map(index_bit_width).into();
        assert_eq!(widths, [1, 1, 1, 2, 2, 3, 8, 9]);
    }
}
