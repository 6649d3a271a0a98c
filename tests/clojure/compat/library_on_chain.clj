;; What the Clojure Datacamp library does with every backup folder of a
;; database — Datacamp's full, incremental and history backups and an
;; interrupted one — reproduced step for step from its source
;; (alekcz/datacamp, src/datacamp/core.clj, directory.clj, metadata.clj,
;; utils.clj; latest stored version). Only what those functions do before
;; they reach Datahike is reproduced; Datahike itself is a stand-in (an atom
;; that records whether the restore touched the target connection).
;;
;; Usage:
;;   clojure -cp … library_on_chain.clj BASE-DIR DATABASE-ID
;;
;; Prints, one per line:
;;   list ID TYPE COMPLETED            list-backups-in-directory's entries
;;   s3-list ID|nil TYPE COMPLETED     list-backups over the same objects
;;                                     (every key ending manifest.edn)
;;   restore ID SUCCESS TOUCHED LOADED ERROR   restore-from-directory
;;   verify ID SUCCESS                 verify-backup-in-directory
;;   s3-cleanup-count N                cleanup-incomplete (it only counts)
;;   cleanup-removed ID…               cleanup-incomplete-in-directory with
;;                                     :older-than-hours -1 (everything old
;;                                     enough), which deletes folders
;;   remaining ID…                     the folders left afterwards
(load-file (str (.getParent (java.io.File. ^String *file*)) "/common.clj"))

;; ------------------------------------------------ datacamp.utils / metadata

(defn hours-since [^java.util.Date timestamp]
  (let [now (.getTime (java.util.Date.))
        then (.getTime timestamp)]
    (/ (- now then) 1000.0 60.0 60.0)))

(defn read-edn-from-file [file-path]
  (edn/read-string (slurp file-path)))

;; ------------------------------------------------ datacamp.directory

(defn list-backup-dirs [base-dir database-id]
  (let [db-dir (io/file base-dir database-id)]
    (when (.exists db-dir)
      (->> (.listFiles db-dir)
           (filter #(.isDirectory ^File %))
           (map (fn [^File d] {:backup-id (.getName d) :path (.getAbsolutePath d)}))))))

(defn cleanup-directory [dir-path]
  (let [dir (io/file dir-path)]
    (when (.exists dir)
      (doseq [^File file (.listFiles dir)]
        (if (.isDirectory file)
          (cleanup-directory (.getAbsolutePath file))
          (.delete file)))
      (.delete dir))))

;; ------------------------------------------------ datacamp.core

(defn list-backups-in-directory [base-dir database-id]
  (doall
   (keep (fn [{:keys [path]}]
           (try
             (let [manifest (read-edn-from-file (str path "/manifest.edn"))]
               {:backup-id (:backup/id manifest)
                :type (:backup/type manifest)
                :created-at (:backup/created-at manifest)
                :completed? (:backup/completed manifest)
                :datom-count (:stats/datom-count manifest)
                :size-bytes (:stats/size-bytes manifest)
                :path path})
             (catch Exception _ nil)))
         (list-backup-dirs base-dir database-id))))

(defn list-backups-s3
  "list-backups over a bucket's objects (here the same files): every key
  under the database prefix that ends manifest.edn, each read or nil."
  [base-dir database-id]
  (let [keys (->> (file-seq (io/file base-dir database-id))
                  (filter #(.isFile ^File %))
                  (map #(.getPath ^File %))
                  (filter #(re-find #"manifest\.edn$" %)))]
    (doall
     (map (fn [key]
            (try
              (let [manifest (read-edn-from-file key)]
                {:backup-id (:backup/id manifest)
                 :type (:backup/type manifest)
                 :created-at (:backup/created-at manifest)
                 :completed? (:backup/completed manifest)
                 :datom-count (:stats/datom-count manifest)
                 :size-bytes (:stats/size-bytes manifest)
                 :s3-key key})
              (catch Exception _ nil)))
          keys))))

(defn verify-backup-in-directory [base-dir backup-id database-id]
  (let [backup-path (str base-dir "/" database-id "/" backup-id)]
    (try
      (let [manifest (read-edn-from-file (str backup-path "/manifest.edn"))
            chunks (:chunks manifest)
            missing (filter (fn [chunk]
                              (not (.exists (io/file (str backup-path "/" (:chunk/s3-key chunk))))))
                            chunks)]
        (if (empty? missing)
          {:success true :chunk-count (count chunks)}
          {:success false :missing-chunks (map :chunk/id missing)}))
      (catch Exception e {:success false :error (.getMessage e)}))))

(defn compare-datom-maps-by-tx [d1 d2]
  (let [tx-cmp (compare (:tx d1) (:tx d2))]
    (if (zero? tx-cmp)
      (let [a1 (:a d1) a2 (:a d2)
            t1 (= a1 :db/txInstant) t2 (= a2 :db/txInstant)]
        (cond (and t1 (not t2)) -1
              (and t2 (not t1)) 1
              :else (let [e-cmp (compare (:e d1) (:e d2))]
                      (if (zero? e-cmp) (compare a1 a2) e-cmp))))
      tx-cmp)))

(defn merge-sorted-chunk-streams [chunks]
  (let [pq (java.util.PriorityQueue.
            (reify java.util.Comparator
              (compare [_ e1 e2] (compare-datom-maps-by-tx (first e1) (first e2)))))]
    (doseq [[idx chunk-seq] (map-indexed vector chunks)]
      (when-let [first-datom (first chunk-seq)]
        (.offer pq [first-datom idx (rest chunk-seq)])))
    ((fn step []
       (lazy-seq
        (when-not (.isEmpty pq)
          (let [[datom idx remaining] (.poll pq)]
            (when-let [next-datom (first remaining)]
              (.offer pq [next-datom idx (rest remaining)]))
            (cons datom (step)))))))))

(defn restore-from-directory
  "As the library's, with `conn` an atom standing for the Datahike
  connection: every change the library makes to it (the max-eid/max-tx
  swap!, each load-entities batch) is recorded."
  [conn base-dir backup-id database-id]
  (let [backup-path (str base-dir "/" database-id "/" backup-id)]
    (try
      (let [manifest (read-edn-from-file (str backup-path "/manifest.edn"))
            chunks (:chunks manifest)
            chunk-count (count chunks)
            _datom-count (:stats/datom-count manifest)]
        (let [chunk-streams
              (map (fn [chunk-meta]
                     (lazy-seq
                      (let [chunk-path (str backup-path "/" (:chunk/s3-key chunk-meta))
                            compressed (read-file-bytes chunk-path)]
                        (when (not= (:chunk/checksum chunk-meta) (sha256 compressed))
                          (throw (ex-info "Checksum mismatch for chunk" {})))
                        (let [chunk-data (deserialize-datom-chunk (decompress-gzip compressed))]
                          (map (fn [[e a v tx added]] {:e e :a a :v v :tx tx :added added})
                               (:datoms chunk-data))))))
                   chunks)
              sorted (->> (merge-sorted-chunk-streams chunk-streams)
                          (remove (fn [{:keys [tx]}] (= tx tx0))))]
          (swap! conn assoc :max-eid (or (:stats/max-eid manifest) 0)
                 :max-tx (or (:stats/max-tx manifest) 0))
          (doseq [batch (partition-all 10000 sorted)]
            (swap! conn update :loaded (fnil + 0) (count batch)))
          {:success true :chunks-processed chunk-count}))
      (catch Exception e {:success false :error (.getMessage e)}))))

(defn cleanup-incomplete-in-directory [base-dir database-id older-than-hours]
  (let [backups (list-backups-in-directory base-dir database-id)
        incomplete (filter (fn [b] (and (not (:completed? b))
                                        (> (hours-since (:created-at b)) older-than-hours)))
                           backups)]
    (doseq [{:keys [path]} incomplete]
      (cleanup-directory path))
    (map :backup-id incomplete)))

(defn cleanup-incomplete-s3-count [base-dir database-id older-than-hours]
  (let [backups (list-backups-s3 base-dir database-id)
        incomplete (filter (fn [b] (and (not (:completed? b))
                                        (> (hours-since (:created-at b)) older-than-hours)))
                           backups)]
    (count incomplete)))

;; ------------------------------------------------ the run

(let [[base db] *command-line-args*
      out (utf8-writer System/out)
      line (fn [& xs] (.write out ^String (str (str/join " " xs) "\n")))
      one-line (fn [s] (str/replace (str s) #"\s+" "_"))]
  (doseq [b (sort-by :backup-id (list-backups-in-directory base db))]
    (line "list" (:backup-id b) (:type b) (:completed? b)))
  (doseq [b (sort-by (comp str :backup-id) (list-backups-s3 base db))]
    (line "s3-list" (:backup-id b) (:type b) (:completed? b)))
  (doseq [{:keys [backup-id]} (sort-by :backup-id (list-backup-dirs base db))]
    (let [conn (atom {})
          r (restore-from-directory conn base backup-id db)]
      (line "restore" backup-id (:success r) (boolean (seq @conn)) (get @conn :loaded 0)
            (one-line (:error r "-"))))
    (line "verify" backup-id (:success (verify-backup-in-directory base backup-id db))))
  (line "s3-cleanup-count" (cleanup-incomplete-s3-count base db -1))
  (apply line "cleanup-removed" (sort (cleanup-incomplete-in-directory base db -1)))
  (apply line "remaining" (sort (map :backup-id (list-backup-dirs base db))))
  (.flush out))
