;; Writes a backup exactly the way the Clojure Datacamp library
;; (org.alekcz/datacamp, datacamp.core/backup-to-directory and, with
;; --s3-prefix, backup-to-s3) writes one, holding Datahike-shaped datoms, and
;; a dump of the datoms it holds for the Rust test to compare with.
;;
;; Usage:
;;   clojure -cp <data.fressian.jar>:<fressian.jar> write_backup.clj \
;;       OUT-DIR DATABASE-ID N-DATOMS CHUNK-SIZE [options]
;;
;;   OUT-DIR       the backup base directory: the backup goes to
;;                 OUT-DIR/DATABASE-ID/BACKUP-ID/
;;   N-DATOMS      datoms in the backup, the bootstrap transaction's included
;;   CHUNK-SIZE    the library's :chunk-size in bytes; like the library, a
;;                 chunk holds (quot CHUNK-SIZE 100) datoms
;;   --s3-prefix P write what backup-to-s3 with prefix P writes (P is
;;                 "datahike-backups/" by default there): :chunk/s3-key is
;;                 the full bucket key P DATABASE-ID/BACKUP-ID/chunks/…, and
;;                 :chunk/s3-etag the quoted MD5 S3 answers; the files are
;;                 still written under OUT-DIR for the test to upload
;;   --relative-s3-keys
;;                 with --s3-prefix: :chunk/s3-key relative to the backup
;;                 folder all the same (how ../shared/docs/FORMAT.md words
;;                 it), which Datacamp must read too
;;   --legacy-chunk-map
;;                 chunk documents without :format/serialization, as
;;                 datacamp.serialization/serialize-datom-chunk wrote them
;;                 before that key was added
;;   --nil-in-tuple
;;                 one tuple holds nil, as Datahike allows ([7 nil] in
;;                 :item/pair of the first edge entity), which Datacamp
;;                 restores since issue 11 item 13
;;   --expected F  where to write the dump (default OUT-DIR/expected-datoms.edn)
;;
;; Prints "key value" lines: backup-id, backup-dir, datoms, chunks,
;; bootstrap-datoms, max-eid, max-tx, expected.
;;
;; The datoms are Datahike-shaped, in EAVT order as (d/datoms db :eavt)
;; returns them, current state only (no retractions):
;; - the bootstrap transaction 536870912 (tx0): Datahike's built-in
;;   attributes as schema entities and its own :db/txInstant;
;; - tx0+1: the user schema, one attribute per value type, with
;;   :db/ident, :db/valueType, :db/cardinality and some :db/unique,
;;   :db/index, :db/doc, :db/isComponent, :db/tupleTypes, :db/tupleType;
;; - tx0+2: entities holding edge values of every type;
;; - tx0+3 …: ordinary entities, 40 per transaction, until N-DATOMS;
;; - every transaction entity carries :db/txInstant.
(load-file (str (.getParent (java.io.File. ^String *file*)) "/common.clj"))

(import '(java.security SecureRandom)
        '(java.time ZonedDateTime ZoneId))

;; ------------------------------------------------------------------ data

(def epoch-ms 1700000000000)

(defn tx-instant [tx]
  (java.util.Date. (+ epoch-ms (* 1000 (- tx tx0)))))

(def builtin-attrs
  "Datahike's built-in attributes as the bootstrap transaction stores them."
  [[:db/ident :db.type/keyword]
   [:db/valueType :db.type/keyword]
   [:db/cardinality :db.type/keyword]
   [:db/unique :db.type/keyword]
   [:db/index :db.type/boolean]
   [:db/doc :db.type/string]
   [:db/txInstant :db.type/instant]])

(defn bootstrap-datoms []
  (concat
   (for [[i [ident vt]] (map-indexed vector builtin-attrs)
         :let [e (inc i)]
         d [[e :db/cardinality :db.cardinality/one tx0 true]
            [e :db/ident ident tx0 true]
            [e :db/valueType vt tx0 true]]]
     d)
   [[tx0 :db/txInstant (java.util.Date. 0) tx0 true]]))

(def first-schema-eid (inc (count builtin-attrs)))

(def user-attrs
  "ident, value type, cardinality, extra schema datoms."
  [[:item/id :db.type/long :db.cardinality/one {:db/unique :db.unique/identity}]
   [:item/name :db.type/string :db.cardinality/one {:db/index true :db/doc "A name; any text."}]
   [:item/count :db.type/long :db.cardinality/one {}]
   [:item/ratio :db.type/double :db.cardinality/one {}]
   [:item/weight :db.type/float :db.cardinality/one {}]
   [:item/active :db.type/boolean :db.cardinality/one {}]
   [:item/status :db.type/keyword :db.cardinality/one {:db/index true}]
   [:item/handler :db.type/symbol :db.cardinality/one {}]
   [:item/uuid :db.type/uuid :db.cardinality/one {:db/unique :db.unique/value}]
   [:item/created :db.type/instant :db.cardinality/one {}]
   [:item/big :db.type/bigint :db.cardinality/one {}]
   [:item/price :db.type/bigdec :db.cardinality/one {}]
   [:item/parent :db.type/ref :db.cardinality/one {}]
   [:item/payload :db.type/bytes :db.cardinality/one {}]
   [:item/pair :db.type/tuple :db.cardinality/one {:db/tupleTypes [:db.type/long :db.type/string]}]
   [:item/dims :db.type/tuple :db.cardinality/one {:db/tupleType :db.type/double}]
   [:item/tags :db.type/string :db.cardinality/many {}]
   [:item/parts :db.type/ref :db.cardinality/many {:db/isComponent true}]])

(def schema-tx (+ tx0 1))
(def edge-tx (+ tx0 2))
(def first-user-eid (+ first-schema-eid (count user-attrs)))

(defn schema-datoms []
  (concat
   (for [[i [ident vt card extra]] (map-indexed vector user-attrs)
         :let [e (+ first-schema-eid i)]
         [a v] (concat [[:db/ident ident] [:db/valueType vt] [:db/cardinality card]] extra)]
     [e a v schema-tx true])
   [[schema-tx :db/txInstant (tx-instant schema-tx) schema-tx true]]))

(defn big-dec [^String s] (BigDecimal. s))

(def edge-entities
  "Attribute maps of the entities of tx0+2: the edge values of every type.
  No -0.0: the reference's Fressian writer stores it as 0.0 (see
  docs/FORMAT.md), so the backup would not hold what the dump says."
  [{:item/name ""
    :item/count Long/MAX_VALUE
    :item/ratio 0.0
    :item/weight (float 0.0)
    :item/big 0N
    :item/price (big-dec "0")
    :item/payload (byte-array 0)
    :item/created (java.util.Date. 0)
    :item/active false}
   {:item/name "astral \uD83D\uDE00 \"quoted\" back\\slash\nnew line\ttab\r é ü 中文 \u0001 \u007f \uFFFD"
    :item/count Long/MIN_VALUE
    :item/ratio Double/POSITIVE_INFINITY
    :item/weight Float/MAX_VALUE
    :item/big 123456789012345678901234567890N
    :item/price (big-dec "3.14159265358979323846264338327950288")
    :item/created (java.util.Date. -1000)
    :item/status :plain
    :item/handler 'plain
    :item/active true}
   {:item/ratio Double/NEGATIVE_INFINITY
    :item/weight Float/MIN_VALUE
    :item/big -9223372036854775809N
    :item/price (big-dec "1E+3")
    :item/created (java.util.Date. 253402300799999)
    :item/payload (byte-array (map unchecked-byte [0 1 -1 127 -128]))
    :item/uuid (java.util.UUID. -1 -1)}
   {:item/ratio Double/NaN
    :item/weight (float -1.5)
    :item/big 42N
    :item/price (big-dec "-0.00100")
    :item/uuid (java.util.UUID. 0 0)
    :item/pair [Long/MIN_VALUE "\uD83D\uDE00"]
    :item/dims [Double/POSITIVE_INFINITY 0.5 -1.0E300]}
   {:item/ratio Double/MIN_VALUE
    :item/weight (float 0.1)
    :item/price (big-dec "1E-10")
    :item/count -1
    :item/tags #{"" "\uD83D\uDE00" "a"}
    :item/pair [0 ""]
    :item/dims []}
   {:item/ratio 1.0E300
    :item/weight Float/NaN
    :item/name "\u0000 nul"
    :item/handler 'clojure.core/inc
    :item/status :status/active}])

(defn entity-attrs
  "The attributes of ordinary entity number i (0-based): always :item/id
  and :item/name, three more in rotation, tags and parts now and then."
  [i eid]
  (let [rotation [:item/count :item/ratio :item/weight :item/active :item/status
                  :item/handler :item/uuid :item/created :item/big :item/price
                  :item/parent :item/payload :item/pair :item/dims]
        value (fn [a]
                (case a
                  :item/count (* (if (odd? i) -1 1) i 7919)
                  :item/ratio (/ i 7.0)
                  :item/weight (float (/ i 3.0))
                  :item/active (even? i)
                  :item/status (nth [:status/active :status/inactive :pending] (mod i 3))
                  :item/handler (symbol "handlers" (str "h" (mod i 17)))
                  :item/uuid (java.util.UUID. 0x0123456789abcdef (long i))
                  :item/created (java.util.Date. (+ epoch-ms (* i 1001)))
                  :item/big (* (bigint i) 1000000000000000000000N)
                  :item/price (BigDecimal. (BigInteger/valueOf (* i 101)) (int (mod i 4)))
                  :item/parent (- eid 1 (mod i 5))
                  :item/payload (byte-array (map unchecked-byte (range (mod i 7) (+ (mod i 7) (mod i 11)))))
                  :item/pair [i (str "p" i)]
                  :item/dims [(double i) 0.5]))
        picked (for [k (range 3)] (nth rotation (mod (+ (* 3 i) k) (count rotation))))]
    (merge {:item/id i :item/name (str "item-" i)}
           (into {} (map (juxt identity value) picked))
           (when (zero? (mod i 5)) {:item/tags #{(str "t" (mod i 3)) (str "t" (+ 3 (mod i 4)))}})
           (when (and (zero? (mod i 9)) (> i 2)) {:item/parts #{(- eid 1) (- eid 2)}}))))

(defn map->datoms
  "An entity map's datoms in EAVT order (attribute, then value)."
  [eid m tx]
  (for [[a v] (sort-by key m)
        v (if (set? v) (sort v) [v])]
    [eid a v tx true]))

(defn all-datoms
  "Every datom of the backup, EAVT, exactly n of them: entities are cut
  short (keeping their first attributes) once n is reached."
  [n nil-in-tuple?]
  (let [fixed (concat (bootstrap-datoms) (schema-datoms))
        edge-entities (cond-> edge-entities
                        nil-in-tuple? (assoc-in [0 :item/pair] [7 nil]))
        edge-eids (range first-user-eid (+ first-user-eid (count edge-entities)))
        edge (concat (mapcat (fn [eid m i] (map->datoms eid (assoc m :item/id (- -1 i)) edge-tx))
                             edge-eids edge-entities (range))
                     [[edge-tx :db/txInstant (tx-instant edge-tx) edge-tx true]])
        prefix (vec (concat fixed edge))
        _ (when (< n (count prefix))
            (throw (ex-info (str "N-DATOMS must be at least " (count prefix)) {:n n})))
        per-tx 40
        first-eid (+ first-user-eid (count edge-entities))]
    (loop [out (transient prefix) left (- n (count prefix)) i 0 tx (inc edge-tx)]
      (if (<= left 0)
        ;; EAVT: entity datoms (ids below tx0) first, then the transaction
        ;; entities; within an entity map->datoms already sorted.
        (let [datoms (persistent! out)]
          ;; sort-by is stable: values of one attribute keep their order.
          (vec (sort-by (fn [[e a]] [e a]) datoms)))
        (let [tx-datom [tx :db/txInstant (tx-instant tx) tx true]
              left (dec left)
              [out left i] (loop [out out left left i i k 0]
                             (if (or (<= left 0) (= k per-tx))
                               [out left i]
                               (let [eid (+ first-eid i)
                                     ds (map->datoms eid (entity-attrs i eid) tx)
                                     take-n (min left (count ds))]
                                 (recur (reduce conj! out (take take-n ds))
                                        (- left take-n) (inc i) (inc k)))))]
          (recur (conj! out tx-datom) left i (inc tx)))))))

;; ------------------------------------------- the library's backup steps

(defn generate-backup-id
  "datacamp.utils/generate-backup-id: UTC start time and 3 random bytes."
  []
  (let [now (ZonedDateTime/now (ZoneId/of "UTC"))
        date-str (.format now (DateTimeFormatter/ofPattern "yyyyMMdd-HHmmss"))
        random-bytes (byte-array 3)]
    (.nextBytes (SecureRandom.) random-bytes)
    (str date-str "-" (apply str (map #(format "%02x" %) random-bytes)))))

(defn create-checkpoint
  "datacamp.metadata/create-checkpoint."
  [{:keys [operation backup-id total-chunks]}]
  {:checkpoint/version "1.0.0"
   :checkpoint/operation operation
   :checkpoint/backup-id backup-id
   :checkpoint/started-at (java.util.Date.)
   :checkpoint/updated-at (java.util.Date.)
   :progress/total-chunks total-chunks
   :progress/completed 0
   :progress/current-chunk nil
   :state/completed-chunks #{}
   :state/failed-chunks {}
   :state/s3-multipart nil
   :resume/token nil
   :resume/retry-count 0})

(defn update-checkpoint-file
  "datacamp.metadata/update-checkpoint-file (update-checkpoint for S3
  writes the same text)."
  [path progress]
  (let [checkpoint (merge {:checkpoint/version "1.0.0"
                           :checkpoint/updated-at (java.util.Date.)
                           :_comment "Resume checkpoint - DO NOT EDIT MANUALLY"}
                          progress)]
    (write-file-bytes path (.getBytes ^String (pprint-str checkpoint) "UTF-8"))))

(defn create-chunk-metadata
  "datacamp.metadata/create-chunk-metadata."
  [{:keys [chunk-id tx-range max-eid datom-count size-bytes checksum s3-key s3-etag]}]
  {:chunk/id chunk-id
   :chunk/tx-range tx-range
   :chunk/max-eid max-eid
   :chunk/datom-count datom-count
   :chunk/size-bytes size-bytes
   :chunk/checksum checksum
   :chunk/s3-etag s3-etag
   :chunk/s3-key s3-key})

(defn create-manifest
  "datacamp.metadata/create-manifest."
  [{:keys [backup-id backup-type database-id datahike-version
           datom-count chunk-count total-size tx-range chunks
           max-eid max-tx started-at completed-at]}]
  {:backup/id backup-id
   :backup/type backup-type
   :backup/created-at started-at
   :backup/completed (some? completed-at)
   :backup/version "1.0.0"
   :_comment "This is a Datahike backup manifest file"
   :_debug {:generated-by "datacamp.core"
            :edn-format true
            :inspect-with "Any text editor or Clojure REPL"}
   :database/id database-id
   :database/branch :db
   :datahike/version (or datahike-version "0.6.1")
   :format/version "1.0.0"
   :format/compression :gzip
   :format/encryption nil
   :stats/datom-count datom-count
   :stats/chunk-count chunk-count
   :stats/size-bytes total-size
   :stats/tx-range tx-range
   :stats/max-eid max-eid
   :stats/max-tx max-tx
   :chunks chunks
   :timing {:backup-started started-at
            :backup-completed completed-at
            :duration-seconds (when completed-at
                                (/ (- (.getTime ^java.util.Date completed-at)
                                      (.getTime ^java.util.Date started-at))
                                   1000.0))}})

(defn serialize-datom-chunk
  "datacamp.serialization/serialize-datom-chunk, with the key order of
  docs/FORMAT.md (or the older four-key map)."
  [chunk-id datoms legacy?]
  (serialize-to-bytes
   (if legacy?
     (array-map :format/type :datom-chunk
                :format/version "1.0.0"
                :chunk/id chunk-id
                :datoms (vec datoms))
     (array-map :format/type :datom-chunk
                :format/version "1.0.0"
                :format/serialization :fressian
                :chunk/id chunk-id
                :datoms (vec datoms)))))

(defn md5-etag [^bytes data]
  (str "\"" (apply str (map #(format "%02x" %) (.digest (MessageDigest/getInstance "MD5") data))) "\""))

(defn parse-options [args]
  (loop [opts {} [a & more] args]
    (case a
      nil opts
      "--s3-prefix" (recur (assoc opts :s3-prefix (first more)) (rest more))
      "--legacy-chunk-map" (recur (assoc opts :legacy? true) more)
      "--relative-s3-keys" (recur (assoc opts :relative-s3-keys? true) more)
      "--nil-in-tuple" (recur (assoc opts :nil-in-tuple? true) more)
      "--expected" (recur (assoc opts :expected (first more)) (rest more))
      (throw (ex-info (str "unknown option " a) {})))))

(let [[out-dir database-id n-datoms chunk-size & more] *command-line-args*
      _ (when-not chunk-size
          (binding [*out* *err*]
            (println "usage: write_backup.clj OUT-DIR DATABASE-ID N-DATOMS CHUNK-SIZE [--s3-prefix P [--relative-s3-keys]] [--legacy-chunk-map] [--nil-in-tuple] [--expected FILE]")
            (System/exit 2)))
      {:keys [s3-prefix legacy? nil-in-tuple? relative-s3-keys? expected]} (parse-options more)
      expected (or expected (str out-dir "/expected-datoms.edn"))
      n (Long/parseLong n-datoms)
      chunk-size (Long/parseLong chunk-size)
      datoms (all-datoms n nil-in-tuple?)
      backup-id (generate-backup-id)
      backup-path (str out-dir "/" database-id "/" backup-id)
      started-at (java.util.Date.)
      datoms-per-chunk (max 1 (quot chunk-size 100))
      _ (update-checkpoint-file (str backup-path "/checkpoint.edn")
                                (create-checkpoint {:operation :backup
                                                    :backup-id backup-id
                                                    :total-chunks :unknown}))
      chunk-metadata
      (vec (for [[idx chunk] (map-indexed vector (partition-all datoms-per-chunk datoms))
                 :when (seq chunk)]
             (let [chunk-vec (vec chunk)
                   min-tx (reduce min Long/MAX_VALUE (map #(nth % 3) chunk-vec))
                   max-tx (reduce max 0 (map #(nth % 3) chunk-vec))
                   ;; As the library: the largest :e of the chunk, which
                   ;; counts transaction entities (their :db/txInstant).
                   max-eid (reduce max 0 (map first chunk-vec))
                   compressed (compress-gzip (serialize-datom-chunk idx chunk-vec legacy?))
                   relative (str "chunks/datoms-" idx ".fressian.gz")
                   size (write-file-bytes (str backup-path "/" relative) compressed)]
               (create-chunk-metadata
                {:chunk-id idx
                 :tx-range [min-tx max-tx]
                 :max-eid max-eid
                 :datom-count (count chunk-vec)
                 :size-bytes (if s3-prefix (alength compressed) size)
                 :checksum (sha256 compressed)
                 :s3-key (if (and s3-prefix (not relative-s3-keys?))
                           (str s3-prefix database-id "/" backup-id "/" relative)
                           relative)
                 :s3-etag (when s3-prefix (md5-etag compressed))}))))
      completed-at (java.util.Date.)
      manifest (create-manifest
                {:backup-id backup-id
                 :backup-type :full
                 :database-id database-id
                 :datahike-version "0.6.1"
                 :datom-count (reduce + (map :chunk/datom-count chunk-metadata))
                 :chunk-count (count chunk-metadata)
                 :max-eid (reduce max 0 (map :chunk/max-eid chunk-metadata))
                 :max-tx (reduce max 0 (map #(second (:chunk/tx-range %)) chunk-metadata))
                 :total-size (reduce + (map :chunk/size-bytes chunk-metadata))
                 :tx-range [nil nil]
                 :chunks chunk-metadata
                 :started-at started-at
                 :completed-at completed-at})]
  (write-file-bytes (str backup-path "/manifest.edn") (.getBytes ^String (pprint-str manifest) "UTF-8"))
  (write-file-bytes (str backup-path "/complete.marker") (.getBytes "complete" "UTF-8"))
  (with-open [w (utf8-writer (io/output-stream (io/file expected)))]
    (doseq [d datoms]
      (.write w ^String (datom-line d))
      (.write w "\n")))
  (doseq [[k v] [["backup-id" backup-id]
                 ["backup-dir" backup-path]
                 ["datoms" (count datoms)]
                 ["chunks" (count chunk-metadata)]
                 ["bootstrap-datoms" (count (filter #(= tx0 (nth % 3)) datoms))]
                 ["max-eid" (:stats/max-eid manifest)]
                 ["max-tx" (:stats/max-tx manifest)]
                 ["expected" expected]]]
    (println k v)))
